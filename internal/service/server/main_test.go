package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// childEnv makes the test binary run a server instead of the tests: the crash
// tests start it as a subprocess so that they can SIGKILL it.
const childEnv = "SENSORIUM_TEST_CHILD_SERVER"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(runChild(dir))
	}
	os.Exit(m.Run())
}

// runChild serves until SIGTERM (clean shutdown, exit 0) or SIGKILL.
func runChild(dir string) int {
	level := slog.LevelWarn
	_ = level.UnmarshalText([]byte(os.Getenv(childEnv + "_LOG"))) // e.g. "debug" while looking into a failure
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	cfg := Config{DataDir: dir, NATSListen: os.Getenv(childEnv + "_NATS"), HTTPListen: os.Getenv(childEnv + "_HTTP"), Logger: log}
	if c := os.Getenv(childEnv + "_CLUSTER"); c != "" { // a cluster node (cluster_process_test.go)
		if err := json.Unmarshal([]byte(c), &cfg.Cluster); err != nil {
			fmt.Fprintln(os.Stderr, "child server: cluster config:", err)
			return 3
		}
	}
	srv, err := Start(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child server:", err)
		return 3
	}
	fmt.Printf("READY %s %s\n", srv.HTTPURL(), srv.NATSURL())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		fmt.Fprintln(os.Stderr, "child server shutdown:", err)
		return 4
	}
	return 0
}
