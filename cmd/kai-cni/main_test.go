package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestMain lets the tests run this binary's main as the plugin, so they
// exercise the skel wiring (env, stdin, exit code, JSON on stdout) exactly
// as a runtime does, without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("KAI_CNI_TEST_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// run executes the plugin with the CNI environment env and stdin; it
// returns stdout and the exit code.
func run(t *testing.T, env []string, stdin string) ([]byte, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append([]string{"KAI_CNI_TEST_RUN_MAIN=1", "CNI_PATH=/opt/cni/bin"}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return stdout.Bytes(), 0
	case errors.As(err, &exitErr):
		return stdout.Bytes(), exitErr.ExitCode()
	default:
		t.Fatalf("run plugin: %v (stderr %s)", err, stderr.String())
		return nil, -1
	}
}

func TestVersion(t *testing.T) {
	out, code := run(t, []string{"CNI_COMMAND=VERSION"}, `{"cniVersion":"1.0.0"}`)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	var got struct {
		SupportedVersions []string `json:"supportedVersions"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("VERSION output %q: %v", out, err)
	}
	if want := []string{"0.4.0", "1.0.0", "1.1.0"}; !reflect.DeepEqual(got.SupportedVersions, want) {
		t.Errorf("supportedVersions = %q, want %q", got.SupportedVersions, want)
	}
}

// TestErrorsAreCNIErrors checks that failures reach the runtime as CNI
// error JSON with the plugin's code and a non-zero exit.
func TestErrorsAreCNIErrors(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "absent.sock")
	tests := []struct {
		name string
		env  []string
		conf string
		code uint
		msg  string
	}{{
		name: "ADD without prevResult",
		env:  []string{"CNI_COMMAND=ADD", "CNI_CONTAINERID=c1", "CNI_NETNS=/var/run/netns/x", "CNI_IFNAME=net1", "CNI_NETNS_OVERRIDE=1"},
		conf: `{"cniVersion":"1.0.0","name":"blue","type":"kai-cni","deviceID":"0000:03:00.2"}`,
		code: 7,
		msg:  "chained after",
	}, {
		name: "STATUS without kai-host",
		env:  []string{"CNI_COMMAND=STATUS"},
		conf: `{"cniVersion":"1.1.0","name":"blue","type":"kai-cni","socket":"` + socket + `"}`,
		code: 50,
		msg:  "kai-host is not reachable",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, exit := run(t, tc.env, tc.conf)
			if exit == 0 {
				t.Fatalf("exit 0, want failure; stdout %s", out)
			}
			var e struct {
				Code uint   `json:"code"`
				Msg  string `json:"msg"`
			}
			if err := json.Unmarshal(out, &e); err != nil {
				t.Fatalf("stdout %q is not a CNI error: %v", out, err)
			}
			if e.Code != tc.code || !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("error = %d %q, want %d containing %q", e.Code, e.Msg, tc.code, tc.msg)
			}
		})
	}

	t.Run("DEL without kai-host succeeds", func(t *testing.T) {
		out, exit := run(t, []string{"CNI_COMMAND=DEL", "CNI_CONTAINERID=c1", "CNI_IFNAME=net1", "CNI_NETNS_OVERRIDE=1"},
			`{"cniVersion":"1.0.0","name":"blue","type":"kai-cni","socket":"`+socket+`"}`)
		if exit != 0 {
			t.Errorf("exit %d, stdout %s", exit, out)
		}
	})
}
