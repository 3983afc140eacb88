package compat

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startCluster starts n sensorium serve processes on loopback as one
// cluster (serve --node --cluster --routes), sharing a credentials file, and
// returns them once every one is serving (a fresh cluster serves once a
// majority of its nodes are up, so they are started together). flags go to
// every node.
func startCluster(t *testing.T, n int, flags ...string) []*server {
	t.Helper()
	dir := t.TempDir()
	key := keyPair{ID: "AKIA" + strings.ToUpper(randHex(t, 8)), Secret: randHex(t, 20)}
	creds := filepath.Join(dir, "credentials")
	if err := os.WriteFile(creds, []byte(fmt.Sprintf("[compat]\naws_access_key_id = %s\naws_secret_access_key = %s\n", key.ID, key.Secret)), 0o600); err != nil {
		t.Fatal(err)
	}
	// The route listeners' ports must be known before any node starts: each
	// names the others'. A port taken between here and the start fails the
	// test loudly (the node exits), not silently.
	routes := make([]string, n)
	for i := range routes {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		routes[i] = l.Addr().String()
		l.Close()
	}
	nodes := make([]*server, n)
	serving := make([]chan string, n)
	for i := range nodes {
		var others []string
		for j, r := range routes {
			if j != i {
				others = append(others, "nats://"+r)
			}
		}
		name := fmt.Sprintf("n%d", i)
		args := append([]string{"serve", "--node", name, "--data", filepath.Join(dir, name), "--http", "127.0.0.1:0", "--nats", "127.0.0.1:0",
			"--cluster", routes[i], "--routes", strings.Join(others, ","), "--flight", "", "--log-format", "json", "--log-level", "debug",
			"--region", testRegion, "--credentials", creds}, flags...)
		s := &server{Region: testRegion, Key: key, CredentialsFile: creds, cmd: exec.Command(sensoriumBin, args...), logs: &lineLog{}}
		stderr, err := s.cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		s.cmd.Stdout = s.logs
		if err := s.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		serving[i] = make(chan string, 1)
		go s.logs.scan(stderr, serving[i])
		s.done = make(chan error, 1)
		go func() { s.done <- s.cmd.Wait() }()
		t.Cleanup(func() { s.stop(t) })
		nodes[i] = s
	}
	deadline := time.After(60 * time.Second)
	for i, s := range nodes {
		select {
		case s.URL = <-serving[i]:
		case err := <-s.done:
			s.done <- err
			t.Fatalf("node %d exited before serving: %v\n%s", i, err, s.logs)
		case <-deadline:
			t.Fatalf("node %d logged no %q line in 60 s\n%s", i, "sensorium: serving", s.logs)
		}
	}
	return nodes
}

// The console's overview on a cluster node lists every stream of the
// catalog, but its store holds only the streams placed on it: a stream held
// by another node is marked remote with its state unknown and none of the
// numbers a store gives (not a copy's zeros shown as the stream's), and GET
// /v1/stream of it — passed to the node that holds it — gives them.
func TestConsoleOverviewOnACluster(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 2, "--stream-replicas", "1")
	// Streams are placed on the registered nodes: wait for both, so that
	// each node holds some.
	waitFor(t, 20*time.Second, func() error {
		resp := signedGet(t, nodes[0], nodes[0].Key, "/v1/cluster", nil)
		var st struct{ Nodes []struct{ Alive bool } }
		err := json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		alive := 0
		for _, n := range st.Nodes {
			if n.Alive {
				alive++
			}
		}
		if err != nil || alive < len(nodes) {
			return fmt.Errorf("GET /v1/cluster: HTTP %d, %d nodes alive (%v)", resp.StatusCode, alive, err)
		}
		return nil
	})
	names := []string{"rack-0", "rack-1", "rack-2", "rack-3", "rack-4", "rack-5"}
	for _, name := range names {
		signedPost(t, nodes[0], "/createStream", fmt.Sprintf(`{"StreamName":%q,"DataRetentionInHours":1}`, name))
	}
	// Where each stream is: GetDataEndpoint names a node that holds it.
	holder := map[string]int{}
	for _, name := range names {
		var out struct{ DataEndpoint string }
		if err := json.Unmarshal(signedPost(t, nodes[0], "/getDataEndpoint", fmt.Sprintf(`{"StreamName":%q,"APIName":"GET_MEDIA"}`, name)), &out); err != nil {
			t.Fatal(err)
		}
		holder[name] = -1
		for i, n := range nodes {
			if strings.TrimSuffix(out.DataEndpoint, "/") == n.URL {
				holder[name] = i
			}
		}
		if holder[name] < 0 {
			t.Fatalf("the data endpoint of %s, %s, is none of the nodes", name, out.DataEndpoint)
		}
	}
	t.Logf("holders: %v", holder)

	for i, node := range nodes {
		local, remote := 0, 0
		for _, name := range names {
			if holder[name] == i {
				local++
			} else {
				remote++
			}
		}
		if local == 0 || remote == 0 {
			t.Errorf("node %d holds %d of the %d streams: the placement did not spread them (both nodes were alive)", i, local, len(names))
		}
		// Polled: a node serves a stream placed on it once its copy is live.
		var rows map[string]map[string]any
		waitFor(t, 20*time.Second, func() error {
			resp := signedGet(t, node, node.Key, "/v1/overview", url.Values{"prefix": {"rack-"}})
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET /v1/overview on node %d: %s %s", i, resp.Status, b)
			}
			var o struct{ Streams []map[string]any }
			if err := json.Unmarshal(b, &o); err != nil {
				return err
			}
			rows = map[string]map[string]any{}
			for _, s := range o.Streams {
				rows[s["name"].(string)] = s
			}
			for _, name := range names {
				s, ok := rows[name]
				if !ok {
					return fmt.Errorf("node %d does not list %s (it lists every stream of the catalog)", i, name)
				}
				_, numbers := s["storedBytes"]
				if holder[name] == i && (s["remote"] == true || s["state"] != "empty" || !numbers) {
					return fmt.Errorf("node %d holds %s, whose row is %v: want state empty and its numbers", i, name, s)
				}
				if holder[name] != i && (s["remote"] != true || s["state"] != "unknown" || numbers) {
					return fmt.Errorf("node %d does not hold %s, whose row is %v: want remote, state unknown and no numbers", i, name, s)
				}
			}
			return nil
		})
		// The remote rows' summaries come from the nodes that hold them
		// (polled too: this node learns that the other's copy is live from
		// its next heartbeat).
		for _, name := range names {
			if holder[name] == i {
				continue
			}
			waitFor(t, 20*time.Second, func() error {
				resp := signedGet(t, node, node.Key, "/v1/stream", url.Values{"stream": {name}})
				var s map[string]any
				err := json.NewDecoder(resp.Body).Decode(&s)
				resp.Body.Close()
				if _, numbers := s["storedBytes"]; err != nil || resp.StatusCode != http.StatusOK || s["remote"] == true || s["state"] != "empty" || !numbers {
					return fmt.Errorf("GET /v1/stream?stream=%s on node %d: HTTP %d %v (%v), want the holder's summary", name, i, resp.StatusCode, s, err)
				}
				return nil
			})
		}
	}
}
