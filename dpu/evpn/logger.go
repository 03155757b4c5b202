package evpn

import (
	"log/slog"

	"github.com/osrg/gobgp/v3/pkg/log"
)

// gobgpLogger adapts GoBGP's logger interface to an injected slog.Logger.
type gobgpLogger struct {
	log   *slog.Logger
	level log.LogLevel
}

func newGoBGPLogger(l *slog.Logger) *gobgpLogger {
	return &gobgpLogger{log: l.With("component", "gobgp"), level: log.InfoLevel}
}

func attrs(f log.Fields) []any {
	out := make([]any, 0, 2*len(f))
	for k, v := range f {
		out = append(out, k, v)
	}
	return out
}

func (g *gobgpLogger) Panic(msg string, f log.Fields) { g.log.Error(msg, attrs(f)...) }
func (g *gobgpLogger) Fatal(msg string, f log.Fields) { g.log.Error(msg, attrs(f)...) }
func (g *gobgpLogger) Error(msg string, f log.Fields) { g.log.Error(msg, attrs(f)...) }
func (g *gobgpLogger) Warn(msg string, f log.Fields)  { g.log.Warn(msg, attrs(f)...) }
func (g *gobgpLogger) Info(msg string, f log.Fields)  { g.log.Info(msg, attrs(f)...) }
func (g *gobgpLogger) Debug(msg string, f log.Fields) { g.log.Debug(msg, attrs(f)...) }
func (g *gobgpLogger) SetLevel(l log.LogLevel)        { g.level = l }
func (g *gobgpLogger) GetLevel() log.LogLevel         { return g.level }
