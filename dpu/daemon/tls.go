package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/kai-dpu/kai/dpu/config"
)

// serverTLS returns the mutual-TLS option for the API listener, or none
// for a unix socket or an insecure listener. Host agents must present a
// certificate signed by api.tls.ca; its name is the node they act for.
func serverTLS(a config.API) ([]grpc.ServerOption, error) {
	if a.TLS == (config.TLS{}) {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(a.TLS.Cert, a.TLS.Key)
	if err != nil {
		return nil, fmt.Errorf("api.tls: load certificate %s / key %s: %w", a.TLS.Cert, a.TLS.Key, err)
	}
	caPEM, err := os.ReadFile(a.TLS.CA)
	if err != nil {
		return nil, fmt.Errorf("api.tls.ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("api.tls.ca: %s holds no PEM certificate", a.TLS.CA)
	}
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}))}, nil
}
