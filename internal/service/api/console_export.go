package api

import (
	"errors"
	"io"
	"net/http"

	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
	"github.com/sensorium-io/sensorium/internal/platform/httpwire"
	"github.com/sensorium-io/sensorium/internal/platform/tablefile"
	"github.com/sensorium-io/sensorium/internal/service/usage"
	"github.com/sensorium-io/sensorium/query"
)

// POST /v1/export?format=parquet|csv takes the body of POST /v1/query and
// answers its rows as a Parquet file or CSV, streamed batch by batch as the
// query runs: what the console's Download saves, written by the same
// package as `sensorium query -o x.parquet` and `-o x.csv` (tablefile). The key needs Query on the streams. A query that fails after
// the first bytes went out ends the body early and names the error in the
// Sensorium-Error trailer, as POST /v1/query does.

func init() {
	mount(func(a *api, mux *http.ServeMux) {
		mux.HandleFunc("POST /v1/export", a.authorized(awsauth.ActionQuery, queryStreams, a.routed(streamsOfQuery, a.export)))
	})
}

// exportRowGroupBytes bounds a Parquet row group, which the writer holds in
// memory until it is full: a server answers many exports at once.
const exportRowGroupBytes = 32 << 20

func (a *api) export(w http.ResponseWriter, r *http.Request) {
	format := r.URL.Query().Get("format")
	var contentType string
	switch format {
	case "parquet":
		contentType = "application/vnd.apache.parquet"
	case "csv":
		contentType = "text/csv; charset=utf-8"
	default:
		writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "format=%q: export writes parquet or csv (POST /v1/query answers Arrow)", truncateParam(format)))
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	req, err := query.ParseRequest(body)
	if err != nil {
		writeError(w, err)
		return
	}
	if req.Follow {
		writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "an export is of a range: leave follow out"))
		return
	}
	p, err := a.q.PrepareQuery(req)
	if err != nil {
		writeError(w, err)
		return
	}
	out := &exportWriter{w: w}
	tw, err := tablefile.New(tablefile.Format(format), p.Schema(), out, exportRowGroupBytes)
	var le *tablefile.ListColumnError
	if errors.As(err, &le) {
		writeError(w, httpwire.Errorf(httpwire.InvalidArgument, "CSV cannot hold the list column %q: export rows (layout rows, the samples shape) or Parquet", le.Column))
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	// An export is a query written in another format: metered as one, to
	// the first stream it names, as POST /v1/query is.
	if names := req.StreamNames(); len(names) > 0 {
		a.meterAs(r, names[0], usage.Query)
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Trailer", "Sensorium-Error")
	qerr := a.q.QueryBatches(r.Context(), p, tw.Write)
	if qerr != nil {
		a.log.Warn("api: export ended with an error", "format", format, "err", qerr)
		if !out.wrote {
			writeError(w, qerr)
			return
		}
		w.Header().Set("Sensorium-Error", ErrorOf(qerr).Name+": "+ErrorOf(qerr).Message)
		return // the body ends without the Parquet footer: a reader sees it is cut
	}
	if err := tw.Close(); err != nil {
		w.Header().Set("Sensorium-Error", ErrorOf(err).Name+": "+ErrorOf(err).Message)
	}
}

// exportWriter notes whether the body has begun; it is not an io.Closer, so
// that the Parquet writer's Close does not close the response.
type exportWriter struct {
	w     io.Writer
	wrote bool
}

func (e *exportWriter) Write(p []byte) (int, error) {
	e.wrote = e.wrote || len(p) > 0
	return e.w.Write(p)
}
