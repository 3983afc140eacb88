// Package flightsrv serves queries over Arrow Flight, so that a training job
// on N workers can split one read without coordinating: GetFlightInfo answers
// a query with N endpoints covering disjoint time partitions of its range
// (query.Prepared.Partitions: together exactly the rows of the one query, for
// every shape), and each worker DoGets its own. The query is the JSON of POST
// /v1/query (see query.ParseRequest), as the command of a flight descriptor; a
// "partitions" field asks for a number of endpoints, else there is one per
// ten minutes of the range (at most MaxPartitions; a live query has one per
// stream). A query of several streams ("streams") has at least one endpoint
// per stream.
//
// Each endpoint's ticket is the JSON of its partition's query, and its
// location is flight.LocationReuseConnection: the worker redeems it on the
// connection it already has, which holds through TLS, proxies and a server
// listening on 0.0.0.0 (an address the server could name would not).
//
// DoGet hands each record batch's buffers to gRPC as they are: the server's
// codec frames them as FlightData itself, the bytes protobuf would write
// (wire.go), so that a batch is not copied twice on its way to the socket.
//
// It owns no authentication: Start takes gRPC server options, so a
// middleware is a pair of interceptors (grpc.ChainUnaryInterceptor for
// GetFlightInfo, GetSchema; grpc.ChainStreamInterceptor for DoGet,
// ListFlights, Handshake) that read the caller's metadata ("authorization:
// Bearer …", or SigV4's headers) and answer codes.Unauthenticated.
package flightsrv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
	"github.com/sensorium-io/sensorium/internal/service/api"
	"github.com/sensorium-io/sensorium/internal/service/usage"
	"github.com/sensorium-io/sensorium/query"
	"github.com/sensorium-io/sensorium/store"
)

// MaxPartitions bounds the endpoints of one query.
const MaxPartitions = 256

// partitionSpan is the range one endpoint covers when the query does not
// say how many it wants: ten minutes of data (a few hundred MB of vibration).
const partitionSpan = 10 * time.Minute

// Service is the Flight service of a server.
type Service struct {
	flight.BaseFlightServer
	st   *store.Store
	q    *query.Service
	log  *slog.Logger
	addr string // the location endpoints name
	grpc *grpc.Server

	router Router // nil on a single node (cluster.go)
	lister func(ctx context.Context, prefix string, limit int, token string) ([]store.StreamInfo, string, error)
	connMu sync.Mutex
	conns  map[string]*grpc.ClientConn // to other nodes, by location
	meter  atomic.Pointer[usage.Meter] // meters DoGet's bytes per stream (SetUsage)
}

// SetUsage meters the bytes each DoGet sends to its stream (the first it
// names, for a query of several) as usage.Flight.
func (s *Service) SetUsage(m *usage.Meter) { s.meter.Store(m) }

// meteredSender counts the bytes of the Flight data messages it sends.
type meteredSender struct {
	flight.FlightService_DoGetServer
	meter  *usage.Meter
	stream string
}

func (m meteredSender) Send(d *flight.FlightData) error {
	m.meter.Out(m.stream, usage.Flight, len(d.DataHeader)+len(d.DataBody)+len(d.AppMetadata))
	return m.FlightService_DoGetServer.Send(d)
}

// Start serves Flight on ln.
func Start(ln net.Listener, st *store.Store, q *query.Service, log *slog.Logger, opts ...grpc.ServerOption) *Service {
	// The codec first, so that it is the server's whatever the caller's
	// options (which must not force another: DoGet's frames are not
	// protobuf messages; wire.go).
	opts = append([]grpc.ServerOption{grpc.ForceServerCodecV2(newCodec())}, opts...)
	s := &Service{st: st, q: q, log: log, addr: "grpc+tcp://" + ln.Addr().String(), grpc: grpc.NewServer(opts...)}
	flight.RegisterFlightServiceServer(s.grpc, s)
	go func() {
		if err := s.grpc.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			log.Error("flight: server stopped", "err", err)
		}
	}()
	return s
}

// Location is the URI clients connect to.
func (s *Service) Location() string { return s.addr }

// Stop ends every call and closes the listener.
func (s *Service) Stop() {
	s.grpc.Stop()
	s.closeConns()
}

// descriptorQuery reads a query from a descriptor: its command is the query
// JSON, plus "partitions".
func descriptorQuery(d *flight.FlightDescriptor) (query.Request, int, error) {
	if d == nil || d.Type != flight.DescriptorCMD {
		return query.Request{}, 0, status.Error(codes.InvalidArgument, `the descriptor must be a command holding the query JSON, e.g. {"stream": "pump-1", "start": …, "end": …, "partitions": 8}`)
	}
	req, err := query.ParseRequest(d.Cmd)
	if err != nil {
		return req, 0, toStatus(err)
	}
	var extra struct {
		Partitions int `json:"partitions"`
	}
	_ = json.Unmarshal(d.Cmd, &extra) // ParseRequest has checked it is JSON
	if extra.Partitions < 0 || extra.Partitions > MaxPartitions {
		return req, 0, status.Errorf(codes.InvalidArgument, "partitions must be 1 to %d", MaxPartitions)
	}
	return req, extra.Partitions, nil
}

// GetFlightInfo answers a query with its schema and one endpoint per time
// partition; each row of the query is in exactly one.
func (s *Service) GetFlightInfo(ctx context.Context, d *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	req, n, err := descriptorQuery(d)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, awsauth.ActionQuery, req.StreamNames()); err != nil {
		return nil, err
	}
	if c, err := s.remote(ctx, req); err != nil {
		return nil, err
	} else if c != nil {
		return c.GetFlightInfo(outgoing(ctx), d)
	}
	p, err := s.q.PrepareQuery(req)
	if err != nil {
		return nil, toStatus(err)
	}
	if n == 0 {
		n = 1
		if !req.Follow {
			n = int(min(MaxPartitions, max(1, (req.End-req.Start)/int64(partitionSpan))))
		}
	}
	parts, err := p.Partitions(n)
	if err != nil {
		return nil, toStatus(err)
	}
	info := &flight.FlightInfo{
		Schema: flight.SerializeSchema(p.Schema(), memory.DefaultAllocator), FlightDescriptor: d,
		TotalRecords: -1, TotalBytes: -1, Ordered: true,
	}
	for _, part := range parts {
		ticket, err := ticketOf(part)
		if err != nil {
			return nil, err
		}
		info.Endpoint = append(info.Endpoint, &flight.FlightEndpoint{
			Ticket: &flight.Ticket{Ticket: ticket}, Location: []*flight.Location{{Uri: flight.LocationReuseConnection}},
		})
	}
	return info, nil
}

// ticketOf is the query of one partition, as JSON.
func ticketOf(r query.Request) ([]byte, error) { return json.Marshal(r) }

// GetSchema answers a query's schema without reading any row.
func (s *Service) GetSchema(ctx context.Context, d *flight.FlightDescriptor) (*flight.SchemaResult, error) {
	req, _, err := descriptorQuery(d)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, awsauth.ActionQuery, req.StreamNames()); err != nil {
		return nil, err
	}
	if c, err := s.remote(ctx, req); err != nil {
		return nil, err
	} else if c != nil {
		return c.GetSchema(outgoing(ctx), d)
	}
	p, err := s.q.PrepareQuery(req)
	if err != nil {
		return nil, toStatus(err)
	}
	return &flight.SchemaResult{Schema: flight.SerializeSchema(p.Schema(), memory.DefaultAllocator)}, nil
}

// DoGet streams the rows of one ticket (a partition's query). A query that
// fails after its first batch ends the stream with the error's status (a
// Flight stream's end is its gRPC status), so a reader does not take the rows
// so far for the whole answer.
func (s *Service) DoGet(t *flight.Ticket, fs flight.FlightService_DoGetServer) error {
	req, err := query.ParseRequest(t.GetTicket())
	if err != nil {
		return toStatus(err)
	}
	// A ticket is only the query's JSON, which anyone may write: it is
	// authorized as the query itself is.
	if err := s.authorize(fs.Context(), awsauth.ActionQuery, req.StreamNames()); err != nil {
		return err
	}
	if c, err := s.remote(fs.Context(), req); err != nil {
		return err
	} else if c != nil {
		return relayDoGet(c, t, fs)
	}
	p, err := s.q.PrepareQuery(req)
	if err != nil {
		return toStatus(err)
	}
	var out flight.DataStreamWriter = fs
	var meter func(int)
	if m := s.meter.Load(); m != nil {
		if names := req.StreamNames(); len(names) > 0 {
			out = meteredSender{FlightService_DoGetServer: fs, meter: m, stream: names[0]}
			meter = func(n int) { m.Out(names[0], usage.Flight, n) }
		}
	}
	var w interface {
		Write(arrow.RecordBatch) error
		Close() error
	}
	if usesFrames(p.Schema()) {
		w = &frameWriter{ss: fs, schema: p.Schema(), mem: p.Request().Allocator, meter: meter}
	} else {
		w = flight.NewRecordWriter(out, ipcSchema(p.Schema()))
	}
	if err := s.q.QueryBatches(fs.Context(), p, w.Write); err != nil {
		if fs.Context().Err() != nil {
			return status.FromContextError(fs.Context().Err()).Err()
		}
		s.log.Warn("flight: DoGet ended with an error", "stream", req.Stream, "err", err)
		return toStatus(err)
	}
	return w.Close()
}

// ListFlights lists every stream as a flight: its descriptor is the query of
// its whole range, its schema that of its first readable track. It is a
// listing of streams, so the caller's key needs ListStreams, and sees only
// the streams of its grant (as the HTTP API's ListStreams shows them).
func (s *Service) ListFlights(c *flight.Criteria, fs flight.FlightService_ListFlightsServer) error {
	if err := s.authorize(fs.Context(), awsauth.ActionListStreams, nil); err != nil {
		return err
	}
	id, _ := awsauth.IdentityFrom(fs.Context())
	var token string
	for {
		var streams []store.StreamInfo
		var next string
		var err error
		if s.lister != nil {
			streams, next, err = s.lister(fs.Context(), "", 1000, token)
		} else {
			streams, next, err = s.st.ListStreams("", 1000, token)
		}
		if err != nil {
			return toStatus(err)
		}
		for _, st := range streams {
			if !id.Grant.AllowsStream(st.Name) {
				continue
			}
			cmd, _ := json.Marshal(map[string]any{"stream": st.Name, "start": 0, "end": time.Now().UnixNano()})
			d := &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd, Path: []string{st.Name}}
			info := &flight.FlightInfo{FlightDescriptor: d, TotalRecords: -1, TotalBytes: -1}
			if req, _, err := descriptorQuery(d); err == nil {
				if p, err := s.q.PrepareQuery(req); err == nil {
					info.Schema = flight.SerializeSchema(p.Schema(), memory.DefaultAllocator)
				}
			}
			if err := fs.Send(info); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		token = next
	}
}

// authorize refuses a call whose key (flightauth's identity) is not granted
// the action on every one of the streams, with PermissionDenied and the
// HTTP API's AccessDeniedException words; before any stream is read or the
// call is passed to another node. Without authentication there is no
// identity, and nothing is refused.
func (s *Service) authorize(ctx context.Context, action string, streams []string) error {
	id, ok := awsauth.IdentityFrom(ctx)
	if !ok || id.Grant.Unrestricted() {
		return nil
	}
	refuse := func(stream, format string, args ...any) error {
		s.log.Warn("flight: call refused", "error", "AccessDeniedException", "access_key", id.AccessKeyID, "profile", id.Profile, "action", action, "stream", stream)
		return status.Errorf(codes.PermissionDenied, "AccessDeniedException: "+format, args...)
	}
	if !id.Grant.AllowsAction(action) {
		return refuse("", "this access key is not granted %s (its actions = line)", action)
	}
	for _, st := range streams {
		if !id.Grant.AllowsStream(st) {
			return refuse(st, "this access key is not granted %s on stream %s (its streams = line)", action, st)
		}
	}
	return nil
}

// toStatus maps the errors of the query service and the store to gRPC
// codes: the one place Flight decides them. The message is the HTTP API's
// name and message of the error (api.ErrorOf), so that a client reads the
// same words on both transports and an unknown error leaks no text.
func toStatus(err error) error {
	code := codes.Internal
	switch {
	case errors.Is(err, query.ErrInvalidRequest), errors.Is(err, store.ErrInvalidArgument):
		code = codes.InvalidArgument
	case errors.Is(err, store.ErrStreamNotFound), errors.Is(err, store.ErrFragmentNotFound):
		code = codes.NotFound
	}
	ae := api.ErrorOf(err)
	return status.Error(code, fmt.Sprintf("%s: %s", ae.Name, ae.Message))
}

func ipcSchema(s *arrow.Schema) ipc.Option { return ipc.WithSchema(s) }
