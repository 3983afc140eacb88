package api

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
	"github.com/sensorium-io/sensorium/store"
)

// overviewStreamName is the i-th stream of overviewServer: names sort in
// the order they are made.
func overviewStreamName(i int) string { return fmt.Sprintf("line-%05d", i) }

// overviewStore is a store in a temporary folder with n streams, every one
// holding two one-second fragments of a 1 kHz signal put a minute ago (so a
// summary reads all it can: its newest and first fragments, the last
// minute's rate, its tracks).
func overviewStore(tb testing.TB, n int) *store.Store {
	tb.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(store.Options{Dir: tb.TempDir(), Logger: log, RetentionInterval: -1, MaxStreams: max(n, store.DefaultStreamsLimit)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	start := time.Now().Add(-time.Minute).Truncate(time.Millisecond).UnixNano()
	const batch = 500 // streams made between group syncs
	names := make([]string, 0, batch)
	for i := range n {
		name := overviewStreamName(i)
		if _, err := st.CreateStream(store.CreateStreamInput{Name: name, RetentionHours: 24}); err != nil {
			tb.Fatal(err)
		}
		for k := uint64(1); k <= 2; k++ {
			f, err := fuzzFragment(k, start+int64(k)*int64(time.Second))
			if err != nil {
				tb.Fatal(err)
			}
			if _, err := st.Append(name, f); err != nil {
				tb.Fatal(err)
			}
		}
		if names = append(names, name); len(names) == batch || i == n-1 {
			for _, err := range st.SyncStreams(names) {
				if err != nil {
					tb.Fatal(err)
				}
			}
			names = names[:0]
		}
	}
	return st
}

// overviewAnswer is GET /v1/overview's answer, as far as these tests read it.
type overviewAnswer struct {
	Now     float64 `json:"now"`
	Streams []struct {
		Name            string `json:"name"`
		State           string `json:"state"`
		StoredFragments int    `json:"storedFragments"`
		Tracks          []struct {
			Kind string `json:"kind"`
		} `json:"tracks"`
	} `json:"streams"`
	Next string `json:"next"`
}

func getOverview(tb testing.TB, srv *httptest.Server, q url.Values) (overviewAnswer, int, string) {
	tb.Helper()
	p, status, errType, _ := getOverviewSize(tb, srv, q)
	return p, status, errType
}

// getOverviewSize is getOverview that also returns the answer's size.
func getOverviewSize(tb testing.TB, srv *httptest.Server, q url.Values) (overviewAnswer, int, string, int) {
	tb.Helper()
	resp, err := http.Get(srv.URL + "/v1/overview?" + q.Encode())
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	var p overviewAnswer
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &p); err != nil {
			tb.Fatalf("GET /v1/overview?%s: %v", q.Encode(), err)
		}
	}
	return p, resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), len(b)
}

// overviewStreams is how many streams TestOverviewPages makes: 2,000 in
// make test; SENSORIUM_OVERVIEW_STREAMS=10000 for the figure.
func overviewStreams(tb testing.TB, def int) int {
	if v := os.Getenv("SENSORIUM_OVERVIEW_STREAMS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			tb.Fatalf("SENSORIUM_OVERVIEW_STREAMS=%q is not a count of streams", v)
		}
		return n
	}
	return def
}

// BenchmarkOverviewFirstPage is the console's streams page at scale: the
// time of GET /v1/overview's first page over a server with
// SENSORIUM_OVERVIEW_STREAMS streams (default 10,000), each holding data,
// as p50 and p99 of the requests made, for the console's page size (50),
// the default (100) and the largest (1,000); and, to compare, every page
// of 1,000 read one after the other (every stream summarized, what the
// overview cost before it had pages, and what the usage page reads).
func BenchmarkOverviewFirstPage(b *testing.B) {
	n := overviewStreams(b, 10000)
	t0 := time.Now()
	srv := unthrottledServer(b, overviewStore(b, n), nil)
	b.Logf("%d streams made in %v", n, time.Since(t0).Round(time.Millisecond))
	for _, limit := range []string{"50", "", "1000"} {
		b.Run("limit="+limit, func(b *testing.B) {
			q := url.Values{}
			if limit != "" {
				q.Set("limit", limit)
			}
			var took []time.Duration
			size := 0
			for b.Loop() {
				t := time.Now()
				p, status, errType, n := getOverviewSize(b, srv, q)
				took = append(took, time.Since(t))
				size = n
				if status != http.StatusOK || len(p.Streams) == 0 {
					b.Fatalf("GET /v1/overview?%s: %d %s", q.Encode(), status, errType)
				}
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(took[min(len(took)-1, len(took)*99/100)].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(size)/1024, "KiB/answer")
		})
	}
	b.Run("every page of 1000", func(b *testing.B) {
		var took []time.Duration
		size := 0
		for b.Loop() {
			t := time.Now()
			size = 0
			q := url.Values{"limit": {"1000"}}
			for {
				p, status, errType, n := getOverviewSize(b, srv, q)
				if status != http.StatusOK {
					b.Fatalf("GET /v1/overview?%s: %d %s", q.Encode(), status, errType)
				}
				size += n
				if p.Next == "" {
					break
				}
				q.Set("next", p.Next)
			}
			took = append(took, time.Since(t))
		}
		slices.Sort(took)
		b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(took[min(len(took)-1, len(took)*99/100)].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(size)/1024, "KiB/answer")
	})
}

// GET /v1/overview gives the streams a page at a time, in name order: the
// pages walked one after the other list every stream once; a prefix
// filters them; a bad page size or token is refused. Over 2,000 streams
// (SENSORIUM_OVERVIEW_STREAMS for more), each of which holds data.
func TestOverviewPages(t *testing.T) {
	n := overviewStreams(t, 2000)
	st := overviewStore(t, n)
	srv := unthrottledServer(t, st, nil)

	t.Run("first page", func(t *testing.T) {
		p, status, errType := getOverview(t, srv, nil)
		if status != http.StatusOK {
			t.Fatalf("GET /v1/overview: %d %s", status, errType)
		}
		if len(p.Streams) != min(n, defaultOverviewLimit) || (n > defaultOverviewLimit) != (p.Next != "") {
			t.Fatalf("the first page has %d streams and next %q, want %d and a next token", len(p.Streams), p.Next, defaultOverviewLimit)
		}
		for i, s := range p.Streams {
			if s.Name != overviewStreamName(i) || s.StoredFragments != 2 || s.State == "empty" || len(s.Tracks) != 1 || s.Tracks[0].Kind != "scalar" {
				t.Fatalf("row %d: %+v, want %s holding 2 fragments of a scalar track", i, s, overviewStreamName(i))
			}
		}
	})

	t.Run("every page", func(t *testing.T) {
		for _, limit := range []int{1000, 333} {
			var names []string
			next, pages := "", 0
			for {
				q := url.Values{"limit": {strconv.Itoa(limit)}}
				if next != "" {
					q.Set("next", next)
				}
				p, status, errType := getOverview(t, srv, q)
				if status != http.StatusOK {
					t.Fatalf("limit %d, page %d: %d %s", limit, pages+1, status, errType)
				}
				if len(p.Streams) > limit {
					t.Fatalf("limit %d: a page of %d", limit, len(p.Streams))
				}
				for _, s := range p.Streams {
					names = append(names, s.Name)
				}
				pages++
				if next = p.Next; next == "" {
					break
				}
			}
			once := true // in strictly increasing order: each stream at most once
			for i := 1; i < len(names); i++ {
				once = once && names[i-1] < names[i]
			}
			if len(names) != n || !once {
				t.Errorf("limit %d: %d pages listed %d streams (in order, each once: %v), want each of %d once", limit, pages, len(names), once, n)
			}
			if want := (n + limit - 1) / limit; pages != want {
				t.Errorf("limit %d: %d pages, want %d", limit, pages, want)
			}
		}
	})

	t.Run("prefix", func(t *testing.T) {
		cases := []struct {
			prefix string
			limit  int
			want   []int // the page's streams, by number
			next   bool  // streams with the prefix follow the page
		}{
			{"line-0001", 4, []int{10, 11, 12, 13}, true},
			{"line-0001", 10, []int{10, 11, 12, 13, 14, 15, 16, 17, 18, 19}, false},
			{"line-00001", 100, []int{1}, false},
			{"cam-", 10, nil, false},
		}
		for _, c := range cases {
			p, status, errType := getOverview(t, srv, url.Values{"prefix": {c.prefix}, "limit": {strconv.Itoa(c.limit)}})
			if status != http.StatusOK {
				t.Fatalf("prefix %s: %d %s", c.prefix, status, errType)
			}
			var got []int
			for _, s := range p.Streams {
				i, _ := strconv.Atoi(s.Name[len("line-"):])
				got = append(got, i)
			}
			// a full page that ends the listing says so: the next page
			// would be empty
			if !slices.Equal(got, c.want) || (p.Next != "") != c.next {
				t.Errorf("prefix %s, limit %d: streams %v next %q, want %v", c.prefix, c.limit, got, p.Next, c.want)
			}
		}
	})

	// next continues a filtered listing within its prefix, whichever
	// stream it names: one of the prefix's, or one before them all.
	t.Run("prefix and next", func(t *testing.T) {
		cases := []struct {
			prefix, after string
			limit         int
			want          []int
			next          bool
		}{
			{"line-0001", overviewStreamName(13), 4, []int{14, 15, 16, 17}, true},
			{"line-0001", overviewStreamName(15), 4, []int{16, 17, 18, 19}, false},
			{"line-0001", overviewStreamName(19), 4, nil, false},
			{"line-0001", overviewStreamName(5), 3, []int{10, 11, 12}, true},
			{"line-0001", overviewStreamName(n - 1), 3, nil, false},
		}
		for _, c := range cases {
			q := url.Values{"prefix": {c.prefix}, "limit": {strconv.Itoa(c.limit)}, "next": {store.ListToken(c.after)}}
			p, status, errType := getOverview(t, srv, q)
			if status != http.StatusOK {
				t.Fatalf("prefix %s after %s: %d %s", c.prefix, c.after, status, errType)
			}
			var got []int
			for _, s := range p.Streams {
				i, _ := strconv.Atoi(s.Name[len("line-"):])
				got = append(got, i)
			}
			if !slices.Equal(got, c.want) || (p.Next != "") != c.next {
				t.Errorf("prefix %s after %s, limit %d: streams %v next %q, want %v (next %v)", c.prefix, c.after, c.limit, got, p.Next, c.want, c.next)
			}
		}
		// and the next it gives goes on from its page's last stream
		p, _, _ := getOverview(t, srv, url.Values{"prefix": {"line-0001"}, "limit": {"4"}})
		p2, status, errType := getOverview(t, srv, url.Values{"prefix": {"line-0001"}, "limit": {"4"}, "next": {p.Next}})
		if status != http.StatusOK || len(p2.Streams) != 4 || p2.Streams[0].Name != overviewStreamName(14) {
			t.Errorf("the page after %q: %d %s, %+v, want line-00014 … line-00017", p.Next, status, errType, p2.Streams)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for _, q := range []url.Values{
			{"limit": {"0"}}, {"limit": {"1001"}}, {"limit": {"ten"}}, {"next": {"!!"}}, {"next": {"bm90IG91cnM"}},
		} {
			if _, status, errType := getOverview(t, srv, q); status != http.StatusBadRequest || errType != "InvalidArgumentException" {
				t.Errorf("GET /v1/overview?%s: %d %s, want 400 InvalidArgumentException", q.Encode(), status, errType)
			}
		}
	})

	// A key granted some streams sees pages of those alone, full while
	// they last, however few of the catalog's they are.
	t.Run("grants", func(t *testing.T) {
		a := &api{st: st, cat: storeCatalog{st}}
		cases := []struct {
			pattern string
			limit   int
			want    int // streams granted
		}{
			{"line-*7", 30, (n + 3) / 10},
			{"line-*7", 1000, (n + 3) / 10},
			{"line-*7", 20, (n + 3) / 10}, // of 2,000 streams, 200: the last page is full
			{"line-0000*", 10, 10},        // one full page, and streams it may not see after it
			{overviewStreamName(n - 1), 5, 1},
			{"cam-*", 5, 0},
		}
		for _, c := range cases {
			r := httptest.NewRequest("GET", "/v1/overview", nil)
			r = r.WithContext(awsauth.WithIdentity(r.Context(), awsauth.Identity{Grant: &awsauth.Grant{Streams: []string{c.pattern}}}))
			var names []string
			token := ""
			for pages := 1; ; pages++ {
				page, next, err := a.grantedPage(r, "", c.limit, token)
				if err != nil {
					t.Fatal(err)
				}
				// full pages while they last, and a next only when a
				// granted stream follows (so no next page is empty)
				if len(page) > c.limit || next != "" && len(page) < c.limit || pages > 1 && len(page) == 0 {
					t.Fatalf("%s: page %d has %d streams and next %q", c.pattern, pages, len(page), next)
				}
				for _, info := range page {
					if ok, _ := path.Match(c.pattern, info.Name); !ok {
						t.Fatalf("%s: %s listed", c.pattern, info.Name)
					}
					names = append(names, info.Name)
				}
				if token = next; token == "" {
					break
				}
			}
			if len(names) != c.want || !slices.IsSorted(names) {
				t.Errorf("%s, limit %d: %d streams (sorted %v), want %d", c.pattern, c.limit, len(names), slices.IsSorted(names), c.want)
			}
		}
	})
}
