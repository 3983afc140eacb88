package compat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	credsv1 "github.com/aws/aws-sdk-go/aws/credentials"
	v4 "github.com/aws/aws-sdk-go/aws/signer/v4"
	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The console (docs/CONSOLE.md) in Debian's chromium, headless, driven
// through the DevTools protocol by chromedp, against a real sensorium
// serve (SigV4 on) fed by the examples — every kind of signal. Screenshots
// of each page go to $SENSORIUM_ARTIFACTS (default: a folder under the
// system's temporary folder, logged).

// consoleExamples are the producers that feed the server, with their
// stream and the kind each stream's first track is.
var consoleExamples = []struct{ example, stream, kind string }{
	{"pump", "pump-1", "scalar"},
	{"imu", "imu-1", "imu"},
	{"machine-audio", "mic-1", "audio"},
	{"street-lidar", "lidar-1", "pointcloud"},
	{"automotive-radar", "radar-1", "detections"},
	{"can-bus", "can-1", "opaque"},
	{"camera", "cam-1", "video"},
}

// needChromium finds the browser: skipped without it, failed under CI.
func needChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not on PATH (scripts/install-browser-deps.sh installs it)")
	}
	t.Skip("chromium is not on PATH; scripts/install-browser-deps.sh installs it")
	return ""
}

var (
	examplesOnce sync.Once
	examplesDir  string
	examplesErr  error
)

// buildExamples builds the example producers once per test binary.
func buildExamples(t *testing.T) string {
	t.Helper()
	examplesOnce.Do(func() {
		examplesDir, examplesErr = os.MkdirTemp("", "sensorium-examples-")
		if examplesErr != nil {
			return
		}
		gobin := "go"
		if g := os.Getenv("GO"); g != "" {
			gobin = g
		}
		args := []string{"build", "-o", examplesDir + "/"}
		for _, e := range consoleExamples {
			args = append(args, "./examples/"+e.example)
		}
		cmd := exec.Command(gobin, args...)
		cmd.Dir = ".."
		out, err := cmd.CombinedOutput()
		if err != nil {
			examplesErr = fmt.Errorf("building the examples: %v\n%s", err, out)
		}
	})
	if examplesErr != nil {
		t.Fatal(examplesErr)
	}
	return examplesDir
}

// natsURL reads the embedded NATS's URL from the server's serving line.
func (s *server) natsURL(t *testing.T) string {
	t.Helper()
	for _, line := range strings.Split(s.logs.String(), "\n") {
		var rec struct{ Msg, NATS string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "sensorium: serving" && rec.NATS != "" {
			return rec.NATS
		}
	}
	t.Fatalf("no NATS URL in the server's serving line\n%s", s.logs)
	return ""
}

// runExample runs one example producer for d against s, signing with s.Key.
func runExample(ctx context.Context, s *server, nats, dir, example, stream string, d time.Duration) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(dir, example), "--nats", nats, "--endpoint", s.URL, "--stream", stream, "--duration", d.String())
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+s.Key.ID, "AWS_SECRET_ACCESS_KEY="+s.Key.Secret, "AWS_REGION="+s.Region,
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PROFILE=")
	return cmd
}

// artifacts is where screenshots are kept.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SENSORIUM_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "sensorium-console-"+time.Now().Format("20060102-150405"))
	}
	dir = filepath.Join(dir, "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// browserErrors collects what the page reports as errors: uncaught
// exceptions, console.error and the browser's own error log (a failed
// load, a CSP refusal).
type browserErrors struct {
	mu   sync.Mutex
	list []string
	// dialogs gets the page's prompt() and confirm() as they open; a test
	// answers them (answerDialog).
	dialogs chan *page.EventJavascriptDialogOpening
}

func (b *browserErrors) add(s string) { b.mu.Lock(); b.list = append(b.list, s); b.mu.Unlock() }
func (b *browserErrors) take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.list
	b.list = nil
	return out
}

func newBrowser(t *testing.T, chrome, downloads string) (context.Context, *browserErrors) {
	t.Helper()
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]), chromedp.ExecPath(chrome), chromedp.NoSandbox,
		chromedp.WindowSize(1400, 1000), chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("autoplay-policy", "no-user-gesture-required"))
	actx, cancelA := chromedp.NewExecAllocator(t.Context(), opts...)
	t.Cleanup(cancelA)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	errs := &browserErrors{dialogs: make(chan *page.EventJavascriptDialogOpening, 4)}
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			errs.add(fmt.Sprintf("exception: %s at %s:%d", msg, d.URL, d.LineNumber+1))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				errs.add("console.error: " + strings.Join(parts, " "))
			}
		case *page.EventJavascriptDialogOpening:
			select {
			case errs.dialogs <- ev:
			default:
			}
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				errs.add(fmt.Sprintf("log: %s %s", ev.Entry.Text, ev.Entry.URL))
			}
		}
	})
	if err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	err = chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, log.Enable, cdp.Empty{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, runtime.Enable, cdp.Empty{})
		return err
	}))
	if err == nil {
		_, err = cdp.Call(ctx, chromedp.FromContext(ctx).Browser, browser.SetDownloadBehavior,
			browser.SetDownloadBehaviorParams{Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads})
	}
	if err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx, errs
}

// answerDialog waits for the page's next prompt or confirm, checks it asks
// about what, and answers it with text (accepting it).
func answerDialog(t *testing.T, ctx context.Context, errs *browserErrors, what, text string) {
	t.Helper()
	select {
	case ev := <-errs.dialogs:
		if !strings.Contains(ev.Message, what) {
			t.Errorf("the dialog says %q, want it to name %q", ev.Message, what)
		}
		if _, err := cdp.Call(ctx, chromedp.FromContext(ctx).Target, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true, PromptText: text}); err != nil {
			t.Fatalf("answering the dialog: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no dialog about %s opened", what)
	}
}

// evaluate runs JavaScript (an expression, awaited) and decodes its value.
func evaluate(ctx context.Context, js string, out any) error {
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

// pageWaitFor polls a JavaScript expression until it is truthy.
func pageWaitFor(ctx context.Context, js string, timeout time.Duration) error {
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	return err
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Error(err)
	}
}

// inkJS counts, per canvas matching a selector, the pixels in colour (the
// data: axes, grid and text are grey, the background white).
const inkJS = `Array.from(document.querySelectorAll(%q)).map((c) => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i + 3] && Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 60) n++;
  return n;
})`

// settledJS is true once every view has finished loading: its status is
// neither empty nor "loading…".
const settledJS = `(() => { const s = Array.from(document.querySelectorAll('.view h3 .status')); return s.length > 0 && s.every((x) => x.textContent && x.textContent !== 'loading…'); })()`

func TestConsoleInBrowser(t *testing.T) {
	chrome := needChromium(t)
	s := startServer(t)
	nats := s.natsURL(t)
	bins := buildExamples(t)
	shots := artifacts(t)

	// Every example for a few seconds, side by side.
	ctx := testContext(t, 3*time.Minute)
	var wg sync.WaitGroup
	fed := map[string]bool{}
	var fedMu sync.Mutex
	for _, e := range consoleExamples {
		if e.example == "camera" {
			if _, err := exec.LookPath("ffmpeg"); err != nil {
				t.Logf("no ffmpeg on PATH: the camera example cannot make its H.264 clip, so the video view is not checked (scripts/install-test-deps.sh installs ffmpeg)")
				continue
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := runExample(ctx, s, nats, bins, e.example, e.stream, 5*time.Second).CombinedOutput()
			if err != nil {
				t.Errorf("example %s: %v\n%s", e.example, err, out)
				return
			}
			fedMu.Lock()
			fed[e.stream] = true
			fedMu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	downloads := t.TempDir()
	b, errs := newBrowser(t, chrome, downloads)
	noErrors := func(t *testing.T, page string) {
		t.Helper()
		for _, e := range errs.take() {
			t.Errorf("%s: %s", page, e)
		}
	}

	// Sign in: the page at / and its assets load without a signature
	// (the key is asked for), and every request after it is signed.
	t.Run("sign in", func(t *testing.T) {
		err := chromedp.Do(b, chromedp.Navigate(s.URL+"/console/"),
			chromedp.WaitVisible(`input[name=access-key-id]`),
			chromedp.SendKeys(`input[name=access-key-id]`, s.Key.ID),
			chromedp.SendKeys(`input[name=secret]`, s.Key.Secret),
			chromedp.Click(`input[name=remember]`),
			chromedp.Click(`form.signin button[type=submit]`),
			chromedp.WaitVisible(`table.streams tbody tr[data-stream]`))
		if err != nil {
			t.Fatalf("signing in: %v", err)
		}
		var stored bool
		if err := evaluate(b, `new Promise((ok) => { const r = indexedDB.open('sensorium-console'); r.onsuccess = () => { const g = r.result.transaction('keys').objectStore('keys').get('key'); g.onsuccess = () => ok(g.result.secretKey instanceof CryptoKey && !g.result.secretKey.extractable && !JSON.stringify(g.result).includes(`+"`"+s.Key.Secret+"`"+`)); }; })`, &stored); err != nil || !stored {
			t.Errorf("the kept key is not a non-extractable CryptoKey without the secret's text (%v)", err)
		}
		noErrors(t, "sign in")
	})
	if t.Failed() {
		return
	}

	t.Run("create, change retention, delete", func(t *testing.T) {
		const name = "console-made"
		row := `table.streams tbody tr[data-stream="` + name + `"]`
		err := chromedp.Do(b, chromedp.Navigate(s.URL+"/console/#/"),
			chromedp.WaitVisible(`form.create input[name=name]`),
			chromedp.SetValue(`form.create input[name=retention]`, "12"),
			chromedp.SendKeys(`form.create input[name=name]`, name),
			chromedp.Click(`form.create button[type=submit]`),
			chromedp.WaitVisible(row))
		if err != nil {
			t.Fatalf("creating a stream: %v", err)
		}
		// Retention 12 h → 36 h: the prompt, then UpdateDataRetention.
		go func() { _ = chromedp.Do(b, chromedp.Click(row+` td:nth-child(6) button`)) }()
		answerDialog(t, b, errs, name, "36")
		if err := pageWaitFor(b, `(document.querySelector('`+row+` td:nth-child(6)') || {}).textContent === '36 h change'`, 10*time.Second); err != nil {
			t.Errorf("the retention shown did not become 36 h: %v", err)
		}
		// Delete: a wrong name keeps the stream, the right one deletes it.
		go func() { _ = chromedp.Do(b, chromedp.Click(row+` button.danger`)) }()
		answerDialog(t, b, errs, name, "not-"+name)
		if err := pageWaitFor(b, `/not deleted/.test(document.getElementById('banner').textContent)`, 10*time.Second); err != nil {
			t.Errorf("a wrong name did not say the stream was kept: %v", err)
		}
		go func() { _ = chromedp.Do(b, chromedp.Click(row+` button.danger`)) }()
		answerDialog(t, b, errs, name, name)
		if err := pageWaitFor(b, `!document.querySelector('`+row+`')`, 10*time.Second); err != nil {
			t.Errorf("the stream is still listed after its deletion: %v", err)
		}
		resp := signedPostResp(t, s, "/describeStream", `{"StreamName":"`+name+`"}`)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("DescribeStream of the deleted stream: HTTP %d, want 404", resp.StatusCode)
		}
		noErrors(t, "stream management")
	})

	t.Run("streams page", func(t *testing.T) {
		want := len(fed)
		if err := pageWaitFor(b, fmt.Sprintf(`document.querySelectorAll('table.streams tbody tr[data-stream]').length >= %d && Array.from(document.querySelectorAll('img.thumb')).filter((i) => i.complete && i.naturalWidth > 0).length >= %d`, want, want), 20*time.Second); err != nil {
			html, _ := chromedp.Run(b, chromedp.OuterHTML("main"))
			screenshot(t, b, shots, "streams")
			t.Fatalf("the streams page did not list %d streams with previews: %v\n%s", want, err, html)
		}
		var rows []struct{ Stream, State, Kinds, Stored string }
		if err := evaluate(b, `Array.from(document.querySelectorAll('table.streams tbody tr[data-stream]')).map((r) => ({Stream: r.dataset.stream, State: r.querySelector('.state').textContent, Kinds: r.querySelector('.kinds').textContent, Stored: r.cells[6].textContent}))`, &rows); err != nil {
			t.Fatal(err)
		}
		for _, e := range consoleExamples {
			if !fed[e.stream] {
				continue
			}
			i := slices.IndexFunc(rows, func(r struct{ Stream, State, Kinds, Stored string }) bool { return r.Stream == e.stream })
			if i < 0 {
				t.Errorf("stream %s is not listed", e.stream)
				continue
			}
			if r := rows[i]; !strings.Contains(r.Kinds, e.kind) || r.State == "empty" || strings.HasPrefix(r.Stored, "0 B") {
				t.Errorf("stream %s is listed as %+v, want kind %s, stored bytes and a state", e.stream, r, e.kind)
			}
		}
		screenshot(t, b, shots, "streams")
		noErrors(t, "streams page")
	})

	for _, e := range consoleExamples {
		if !fed[e.stream] {
			continue
		}
		t.Run("stream "+e.stream, func(t *testing.T) {
			t0 := time.Now()
			if err := chromedp.Do(b, chromedp.Navigate(s.URL+"/console/#/stream/"+e.stream)); err != nil {
				t.Fatal(err)
			}
			if err := pageWaitFor(b, settledJS, 20*time.Second); err != nil {
				t.Fatalf("the views did not finish loading: %v", err)
			}
			t.Logf("%s painted in %v", e.stream, time.Since(t0).Round(time.Millisecond))
			var statuses []string
			_ = evaluate(b, `Array.from(document.querySelectorAll('.view h3')).map((h) => h.textContent)`, &statuses)
			var bad []string
			_ = evaluate(b, `Array.from(document.querySelectorAll('.view h3 .status.error')).map((s) => s.textContent)`, &bad)
			for _, m := range bad {
				t.Errorf("a view says: %s", m)
			}
			var ink []int
			if err := evaluate(b, fmt.Sprintf(inkJS, ".view canvas"), &ink); err != nil {
				t.Fatal(err)
			}
			if len(ink) == 0 || slices.Max(ink) < 50 {
				t.Errorf("the views' canvases are blank (coloured pixels per canvas: %v; views: %q)", ink, statuses)
			}
			var spans string
			_ = evaluate(b, `document.getElementById('timeline').dataset.spans`, &spans)
			if spans == "" || spans == "0" {
				t.Errorf("the timeline shows no stored span (%q)", spans)
			}
			screenshot(t, b, shots, "stream-"+e.stream)
			noErrors(t, e.stream)
		})
	}

	t.Run("scrub", func(t *testing.T) {
		if err := chromedp.Do(b, chromedp.Navigate(s.URL+"/console/#/stream/pump-1")); err != nil {
			t.Fatal(err)
		}
		if err := pageWaitFor(b, settledJS, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		var before, after string
		var box []float64
		if err := evaluate(b, `document.getElementById('cursor-time').textContent`, &before); err != nil {
			t.Fatal(err)
		}
		if err := evaluate(b, `(() => { const r = document.getElementById('timeline').getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`, &box); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(b, chromedp.MouseClickXY(box[0]+64+(box[2]-76)*0.25, box[1]+box[3]/2)); err != nil {
			t.Fatal(err)
		}
		if err := pageWaitFor(b, fmt.Sprintf(`document.getElementById('cursor-time').textContent !== %q`, before), 5*time.Second); err != nil {
			t.Fatalf("clicking the timeline left the cursor at %s: %v", before, err)
		}
		_ = evaluate(b, `document.getElementById('cursor-time').textContent`, &after)
		// Step with the keyboard: the time shown moves again.
		if err := chromedp.Do(b, chromedp.KeyEvent(kb.ArrowRight)); err != nil {
			t.Fatal(err)
		}
		if err := pageWaitFor(b, fmt.Sprintf(`document.getElementById('cursor-time').textContent !== %q`, after), 5*time.Second); err != nil {
			t.Errorf("the right arrow left the cursor at %s: %v", after, err)
		}
		t.Logf("cursor %s → %s", before, after)
		screenshot(t, b, shots, "scrubbed-pump-1")
		noErrors(t, "scrub")
	})

	// Past the plots' sample budget (lowered here by ?budget=) a plot shows
	// the sampled envelope at once and draws the exact min/max on demand.
	t.Run("sampled envelope, then exact", func(t *testing.T) {
		if err := chromedp.Do(b, chromedp.Navigate(s.URL+"/console/?page=budget#/stream/pump-1?budget=1000")); err != nil {
			t.Fatal(err)
		}
		if err := pageWaitFor(b, settledJS+` && /sampled/.test(document.querySelector('.view h3 .status').textContent)`, 20*time.Second); err != nil {
			var st string
			_ = evaluate(b, `document.querySelector('.view h3 .status').textContent`, &st)
			t.Fatalf("no sampled envelope: %v (%s)", err, st)
		}
		var ink []int
		if err := evaluate(b, fmt.Sprintf(inkJS, ".view canvas"), &ink); err != nil || len(ink) == 0 || ink[0] < 50 {
			t.Errorf("the sampled envelope is blank (%v, %v)", ink, err)
		}
		screenshot(t, b, shots, "sampled-pump-1")
		if err := chromedp.Do(b, chromedp.Click(`.view h3 .status button`)); err != nil {
			t.Fatal(err)
		}
		if err := pageWaitFor(b, `/windows of/.test(document.querySelector('.view h3 .status').textContent)`, 20*time.Second); err != nil {
			t.Errorf("asking for the exact min/max did not draw them: %v", err)
		}
		noErrors(t, "sampled envelope")
	})

	// A view whose pixel columns span a second or more asks for the exact
	// min/max on whole seconds (a whole number of seconds a window, the
	// grid on whole seconds), which the server reads from its per-second
	// summaries: past the same lowered budget the plot draws them, not the
	// sampled envelope, and the server counts fragments read from
	// summaries. Polled: the summariser follows what is stored.
	t.Run("whole-second windows", func(t *testing.T) {
		var last float64
		if err := evaluate(b, `(async () => { const api = await import('/console/api.js'); const s = await api.getJSON('/v1/stream', {stream: 'pump-1'}); return s.last.producer + s.last.durationMs; })()`, &last); err != nil {
			t.Fatal(err)
		}
		to := int64(last)
		from := to - int64(time.Hour/time.Millisecond)
		before := fragmentsFromSummaries(t, s)
		attempt := 0
		waitFor(t, 30*time.Second, func() error {
			attempt++
			u := fmt.Sprintf("%s/console/?page=seconds-%d#/stream/pump-1?from=%d&to=%d&budget=1000", s.URL, attempt, from, to)
			if err := chromedp.Do(b, chromedp.Navigate(u)); err != nil {
				return err
			}
			var st string
			if err := pageWaitFor(b, settledJS, 20*time.Second); err != nil {
				_ = evaluate(b, `document.querySelector('.view h3 .status').textContent`, &st)
				return fmt.Errorf("the plot did not settle: %v (%s)", err, st)
			}
			_ = evaluate(b, `document.querySelector('.view h3 .status').textContent`, &st)
			if !regexp.MustCompile(`windows of [1-9][0-9]* s \(min/max\)`).MatchString(st) {
				return fmt.Errorf("an hour of the pump shows %q, want windows of whole seconds", st)
			}
			if after := fragmentsFromSummaries(t, s); after <= before {
				return fmt.Errorf("no fragment was read from summaries (%v before the plot's query, %v after)", before, after)
			}
			return nil
		})
		var ink []int
		if err := evaluate(b, fmt.Sprintf(inkJS, ".view canvas"), &ink); err != nil || len(ink) == 0 || ink[0] < 50 {
			t.Errorf("the whole-second windows drew nothing (%v, %v)", ink, err)
		}
		screenshot(t, b, shots, "seconds-pump-1")
		// An answer that does not come in time (here: 1 ms) is given up for
		// the sampled envelope, and the exact min/max are drawn when asked.
		u := fmt.Sprintf("%s/console/?page=seconds-wait#/stream/pump-1?from=%d&to=%d&budget=1000&wait=1", s.URL, from, to)
		if err := chromedp.Do(b, chromedp.Navigate(u)); err != nil {
			t.Fatal(err)
		}
		if err := pageWaitFor(b, settledJS+` && /did not come in/.test(document.querySelector('.view h3 .status').textContent)`, 20*time.Second); err != nil {
			var st string
			_ = evaluate(b, `document.querySelector('.view h3 .status').textContent`, &st)
			t.Fatalf("with 1 ms to answer, no sampled envelope: %v (%s)", err, st)
		}
		if err := chromedp.Do(b, chromedp.Click(`.view h3 .status button`)); err != nil {
			t.Fatal(err)
		}
		if err := pageWaitFor(b, `/windows of [1-9][0-9]* s \(min\/max\)/.test(document.querySelector('.view h3 .status').textContent)`, 20*time.Second); err != nil {
			t.Errorf("asking for the exact min/max did not draw whole-second windows: %v", err)
		}
		noErrors(t, "whole-second windows")
	})

	t.Run("download equals query", func(t *testing.T) {
		if err := pageWaitFor(b, settledJS, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		var first struct{ From, To string }
		if err := evaluate(b, `(async () => { const api = await import('/console/api.js'); const s = await api.getJSON('/v1/stream', {stream: 'pump-1'}); const v = await import('/console/views.js'); return {From: v.rfc3339(s.first.producer + 500), To: v.rfc3339(s.first.producer + 1500)}; })()`, &first); err != nil {
			t.Fatal(err)
		}
		for _, format := range []struct{ name, path string }{{"arrows", "/v1/query"}, {"parquet", "/v1/export?format=parquet"}, {"csv", "/v1/export?format=csv"}} {
			err := chromedp.Do(b,
				chromedp.SetValue(`input[name=dl-from]`, first.From), chromedp.SetValue(`input[name=dl-to]`, first.To),
				chromedp.SetValue(`select[name=dl-format]`, format.name),
				chromedp.Click(`form.download button[type=submit]`))
			if err != nil {
				t.Fatal(err)
			}
			if err := pageWaitFor(b, fmt.Sprintf(`/\.%s: /.test(document.getElementById('dl-status').textContent)`, format.name), 20*time.Second); err != nil {
				var st string
				_ = evaluate(b, `document.getElementById('dl-status').textContent`, &st)
				t.Fatalf("the %s download did not finish: %v (%s)", format.name, err, st)
			}
			var saved struct {
				File string
				Size int
			}
			if err := evaluate(b, `({File: window.__sensoriumDownload.file, Size: window.__sensoriumDownload.size})`, &saved); err != nil {
				t.Fatal(err)
			}
			got := waitDownload(t, downloads, saved.File, saved.Size)
			want := signedPost(t, s, format.path, fmt.Sprintf(`{"stream":"pump-1","track":1,"start":%q,"end":%q}`, first.From, first.To))
			if !bytes.Equal(got, want) {
				t.Errorf("the range downloaded as %s (%d bytes) differs from %s of the same range (%d bytes)", format.name, len(got), format.path, len(want))
			}
			if len(want) < 1000 {
				t.Errorf("a second of the pump is only %d bytes of %s", len(want), format.name)
			}
		}
		noErrors(t, "download")
	})

	t.Run("video", func(t *testing.T) {
		if !fed["cam-1"] {
			t.Skip("no camera stream (no ffmpeg to make its clip)")
		}
		if err := chromedp.Do(b, chromedp.Navigate(s.URL+"/console/#/stream/cam-1")); err != nil {
			t.Fatal(err)
		}
		if err := pageWaitFor(b, settledJS, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		// Play from the start of the stream: HLS session, fMP4 through MSE.
		var first struct{ From, To string }
		if err := evaluate(b, `(async () => { const api = await import('/console/api.js'); const s = await api.getJSON('/v1/stream', {stream: 'cam-1'}); const v = await import('/console/views.js'); return {From: v.rfc3339(s.first.producer), To: v.rfc3339(s.last.producer + s.last.durationMs)}; })()`, &first); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(b, chromedp.Click(`.view-video .legend button`)); err != nil {
			t.Fatal(err)
		}
		if err := pageWaitFor(b, `window.__sensoriumVideo && window.__sensoriumVideo.segments > 0 && (() => { const v = document.querySelector('video.player'); return v.readyState >= 3 && v.played.length > 0 && v.played.end(v.played.length - 1) - v.played.start(0) > 0.2; })()`, 20*time.Second); err != nil {
			var st string
			_ = evaluate(b, `document.querySelector('.view-video .legend .status').textContent + ' / readyState ' + document.querySelector('video.player').readyState`, &st)
			t.Fatalf("the video did not play: %v (%s)", err, st)
		}
		var played struct {
			Segments      int
			Codecs        string
			Width, Height int
		}
		_ = evaluate(b, `({Segments: window.__sensoriumVideo.segments, Codecs: window.__sensoriumVideo.codecs, Width: document.querySelector('video.player').videoWidth, Height: document.querySelector('video.player').videoHeight})`, &played)
		t.Logf("played %d segments of %s, %d×%d", played.Segments, played.Codecs, played.Width, played.Height)
		if played.Width == 0 || played.Height == 0 {
			t.Errorf("the video element shows no picture (%+v)", played)
		}
		screenshot(t, b, shots, "video-cam-1")
		// MP4 download: GetClip of the range, as the API answers it.
		err := chromedp.Do(b,
			chromedp.SetValue(`input[name=dl-from]`, first.From), chromedp.SetValue(`input[name=dl-to]`, first.To),
			chromedp.SetValue(`select[name=dl-format]`, "mp4"),
			chromedp.Click(`form.download button[type=submit]`))
		if err != nil {
			t.Fatal(err)
		}
		if err := pageWaitFor(b, `/\.mp4: /.test(document.getElementById('dl-status').textContent)`, 30*time.Second); err != nil {
			var st string
			_ = evaluate(b, `document.getElementById('dl-status').textContent`, &st)
			t.Fatalf("the MP4 download did not finish: %v (%s)", err, st)
		}
		var saved struct {
			File string
			Size int
		}
		_ = evaluate(b, `({File: window.__sensoriumDownload.file, Size: window.__sensoriumDownload.size})`, &saved)
		got := waitDownload(t, downloads, saved.File, saved.Size)
		from, _ := time.Parse(time.RFC3339Nano, first.From)
		to, _ := time.Parse(time.RFC3339Nano, first.To)
		want := signedPost(t, s, "/getClip", fmt.Sprintf(`{"StreamName":"cam-1","ClipFragmentSelector":{"FragmentSelectorType":"PRODUCER_TIMESTAMP","TimestampRange":{"StartTimestamp":%s,"EndTimestamp":%s}}}`,
			strconv.FormatFloat(float64(from.UnixMilli())/1000, 'f', -1, 64), strconv.FormatFloat(float64(to.UnixMilli())/1000, 'f', -1, 64)))
		if !bytes.Equal(got, want) || len(want) < 1000 {
			t.Errorf("the MP4 downloaded (%d bytes) differs from GetClip of the same range (%d bytes)", len(got), len(want))
		}
		noErrors(t, "video")
	})

	t.Run("usage", func(t *testing.T) {
		if err := chromedp.Do(b, chromedp.Navigate(s.URL+"/console/#/usage")); err != nil {
			t.Fatal(err)
		}
		if err := pageWaitFor(b, `document.querySelector('table.usage tr[data-stream="pump-1"]')`, 10*time.Second); err != nil {
			var html string
			_ = evaluate(b, `document.getElementById('app').textContent`, &html)
			t.Fatalf("no usage row for pump-1: %v (%s)", err, html)
		}
		var cells []string
		_ = evaluate(b, `Array.from(document.querySelector('table.usage tr[data-stream="pump-1"]').cells).map((c) => c.textContent)`, &cells)
		if len(cells) < 5 || strings.HasPrefix(cells[1], "0 B") || strings.HasPrefix(cells[3], "0 B") || !strings.Contains(cells[4], "console") {
			t.Errorf("pump-1's usage row %q: want bytes in, and bytes out with the console's reads", cells)
		}
		screenshot(t, b, shots, "usage")
		noErrors(t, "usage")
	})

	t.Run("live", func(t *testing.T) {
		lctx, cancel := context.WithCancel(ctx)
		defer cancel()
		cmd := runExample(lctx, s, nats, bins, "pump", "pump-1", 20*time.Second)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); _ = cmd.Wait() }()
		if err := chromedp.Do(b, chromedp.Navigate(s.URL+"/console/#/stream/pump-1?live=1")); err != nil {
			t.Fatal(err)
		}
		if err := pageWaitFor(b, `window.__sensoriumLive && window.__sensoriumLive.draws >= 40`, 20*time.Second); err != nil {
			var st any
			_ = evaluate(b, `window.__sensoriumLive`, &st)
			t.Fatalf("live mode drew too few frames: %v (%v)\n%s", err, st, out.String())
		}
		var lat []float64
		if err := evaluate(b, `window.__sensoriumLive.latencies`, &lat); err != nil {
			t.Fatal(err)
		}
		sort.Float64s(lat)
		p50, p99 := lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
		t.Logf("live: %d frames drawn, end of frame → paint p50 %.0f ms, p99 %.0f ms", len(lat), p50, p99)
		if p99 > 250 {
			t.Errorf("live frames drew %.0f ms (p99) after their end, over the 250 ms bound", p99)
		}
		var ink []int
		if err := evaluate(b, fmt.Sprintf(inkJS, ".view canvas"), &ink); err != nil || len(ink) == 0 || slices.Max(ink) < 50 {
			t.Errorf("the live plot is blank (%v, %v)", ink, err)
		}
		screenshot(t, b, shots, "live-pump-1")
		noErrors(t, "live")
	})

	// Live mode of the other kinds: RADAR (detections and the range–Doppler
	// map) and opaque CAN frames.
	t.Run("live radar and can", func(t *testing.T) {
		lctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var cmds []*exec.Cmd
		for _, e := range [][2]string{{"automotive-radar", "radar-1"}, {"can-bus", "can-1"}} {
			cmd := runExample(lctx, s, nats, bins, e[0], e[1], 20*time.Second)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds = append(cmds, cmd)
		}
		defer func() {
			cancel()
			for _, c := range cmds {
				_ = c.Wait()
			}
		}()
		// a new document (another URL), so that the live counters start afresh
		if err := chromedp.Do(b, chromedp.Navigate(s.URL+"/console/?page=radar#/stream/radar-1?live=1")); err != nil {
			t.Fatal(err)
		}
		if err := pageWaitFor(b, `window.__sensoriumLive && window.__sensoriumLive.draws >= 20 && document.querySelector('.view-array canvas').width > 300`, 20*time.Second); err != nil {
			t.Fatalf("live RADAR drew too few frames: %v", err)
		}
		var ink []int
		if err := evaluate(b, fmt.Sprintf(inkJS, ".view canvas"), &ink); err != nil || len(ink) < 3 || slices.Min(ink) < 20 {
			t.Errorf("live RADAR: a canvas is blank (coloured pixels per canvas %v, %v)", ink, err)
		}
		screenshot(t, b, shots, "live-radar-1")
		if err := chromedp.Do(b, chromedp.Navigate(s.URL+"/console/?page=can#/stream/can-1?live=1")); err != nil {
			t.Fatal(err)
		}
		if err := pageWaitFor(b, `document.querySelectorAll('table.hex tr').length > 20 && window.__sensoriumLive.frames > 20`, 20*time.Second); err != nil {
			t.Fatalf("live CAN frames did not fill the hex table: %v", err)
		}
		screenshot(t, b, shots, "live-can-1")
		noErrors(t, "live radar and can")
	})

	// The streams page a page at a time: 60 more streams (names that sort
	// before the examples') make two pages of 50; next shows the rest,
	// previous the first again, and the filter narrows the list to the
	// names that begin with it (kept in the URL).
	t.Run("streams pages and filter", func(t *testing.T) {
		for i := range 60 {
			signedPost(t, s, "/createStream", fmt.Sprintf(`{"StreamName":"bay-%02d","DataRetentionInHours":1}`, i))
		}
		rows := `Array.from(document.querySelectorAll('table.streams tbody tr[data-stream]')).map((r) => r.dataset.stream)`
		page := func(what, ready string) []string {
			t.Helper()
			if err := pageWaitFor(b, ready, 10*time.Second); err != nil {
				var got []string
				_ = evaluate(b, rows, &got)
				screenshot(t, b, shots, "streams-pages")
				t.Fatalf("%s: %v (rows %v)", what, err, got)
			}
			var got []string
			if err := evaluate(b, rows, &got); err != nil {
				t.Fatal(err)
			}
			return got
		}
		if err := chromedp.Do(b, chromedp.Navigate(s.URL+"/console/#/")); err != nil {
			t.Fatal(err)
		}
		first := page("the first page", `document.querySelectorAll('table.streams tbody tr[data-stream]').length === 50 && !document.querySelector('button[name=next]').disabled`)
		if first[0] != "bay-00" || first[49] != "bay-49" {
			t.Errorf("the first page runs %s … %s, want bay-00 … bay-49", first[0], first[49])
		}
		if err := chromedp.Do(b, chromedp.Click(`button[name=next]`)); err != nil {
			t.Fatal(err)
		}
		second := page("the second page", `document.querySelector('table.streams tbody tr[data-stream]').dataset.stream === 'bay-50' && document.querySelector('button[name=next]').disabled`)
		if want := 10 + len(fed); len(second) != want || !slices.Contains(second, "pump-1") {
			t.Errorf("the second page lists %v, want bay-50 … bay-59 and the %d examples' streams", second, len(fed))
		}
		// The examples' previews are drawn on the later page too.
		previews := `Array.from(document.querySelectorAll('table.streams tbody tr[data-stream] img.thumb')).filter((i) => i.complete && i.naturalWidth > 0).length`
		if err := pageWaitFor(b, previews+` >= `+fmt.Sprint(len(fed)), 15*time.Second); err != nil {
			var n int
			_ = evaluate(b, previews, &n)
			screenshot(t, b, shots, "streams-page-2")
			t.Fatalf("the second page drew %d previews, want the %d examples': %v", n, len(fed), err)
		}
		screenshot(t, b, shots, "streams-page-2")
		if err := chromedp.Do(b, chromedp.Click(`button[name=previous]`)); err != nil {
			t.Fatal(err)
		}
		page("back to the first page", `document.querySelector('table.streams tbody tr[data-stream]').dataset.stream === 'bay-00' && document.querySelector('button[name=previous]').disabled`)
		if err := chromedp.Do(b, chromedp.SendKeys(`input[name=filter]`, "bay-1")); err != nil {
			t.Fatal(err)
		}
		filtered := page("the filter", `document.querySelectorAll('table.streams tbody tr[data-stream]').length === 10 && location.hash === '#/?prefix=bay-1'`)
		for _, name := range filtered {
			if !strings.HasPrefix(name, "bay-1") {
				t.Errorf("filtered on bay-1, %s is listed", name)
			}
		}
		screenshot(t, b, shots, "streams-filtered")
		// the filter is in the URL: a reload shows the same rows
		if err := chromedp.Do(b, chromedp.Reload()); err != nil {
			t.Fatal(err)
		}
		page("the filtered page reloaded", `document.querySelectorAll('table.streams tbody tr[data-stream]').length === 10 && document.querySelector('input[name=filter]').value === 'bay-1'`)
		noErrors(t, "streams pages and filter")
	})
}

// waitDownload waits for the browser to have saved all size bytes of file
// in dir: a file that is there under its final name is not known to be
// whole yet.
func waitDownload(t *testing.T, dir, file string, size int) []byte {
	t.Helper()
	var got []byte
	waitFor(t, 10*time.Second, func() error {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil || len(b) < size || size == 0 {
			entries, _ := os.ReadDir(dir)
			return fmt.Errorf("the browser saved %d of the %d bytes of %s in the downloads folder (it holds %v; %v)", len(b), size, file, entries, err)
		}
		got = b
		return nil
	})
	return got
}

// signedPost posts body to path on s, signed with s.Key by the v1 SDK's
// signer, and returns the answer's body.
func signedPost(t *testing.T, s *server, path, body string) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	signer := v4.NewSigner(credsv1.NewStaticCredentials(s.Key.ID, s.Key.Secret, ""))
	if _, err := signer.Sign(req, strings.NewReader(body), "kinesisvideo", s.Region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: HTTP %d: %s", path, resp.StatusCode, b)
	}
	return b
}

// fragmentsFromSummaries is the server's count of fragments that aggregate
// queries read from per-second summaries (GET /metrics, unsigned).
func fragmentsFromSummaries(t *testing.T, s *server) float64 {
	t.Helper()
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "sensorium_query_fragments_from_summaries_total "); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("GET /metrics: %q", line)
			}
			return n
		}
	}
	t.Fatalf("GET /metrics (HTTP %d) has no sensorium_query_fragments_from_summaries_total", resp.StatusCode)
	return 0
}
