package flightsrv

import (
	"context"
	"errors"
	"io"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sensorium-io/sensorium/query"
	"github.com/sensorium-io/sensorium/store"
)

// Router is a cluster node's: where the streams of a query are served.
// A node that does not hold them passes each call on to one that does, on
// the caller's behalf (its credentials go along: every node accepts the
// same keys and tokens), so that a client may use any node and endpoints
// keep flight.LocationReuseConnection.
type Router interface {
	// RouteFlight returns the Flight location of a node serving all of the
	// streams, or local when this node does.
	RouteFlight(ctx context.Context, streams []string) (location string, local bool, err error)
	// Dial opens a connection to another node's Flight service.
	Dial(ctx context.Context, location string) (*grpc.ClientConn, error)
}

// SetLister makes ListFlights list the streams of a cluster's catalog
// rather than this node's store (call before it serves).
func (s *Service) SetLister(l func(ctx context.Context, prefix string, limit int, token string) ([]store.StreamInfo, string, error)) {
	s.lister = l
}

// SetRouter makes the service route queries of streams it does not hold
// (call before it serves).
func (s *Service) SetRouter(r Router) { s.router = r }

// remote returns a client of the node that serves req's streams, or nil
// when this node serves them.
func (s *Service) remote(ctx context.Context, req query.Request) (flight.FlightServiceClient, error) {
	if s.router == nil || forwarded(ctx) {
		return nil, nil
	}
	loc, local, err := s.router.RouteFlight(ctx, req.StreamNames())
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "ServiceUnavailableException: no replica of the query's streams can serve reads now: %v", err)
	}
	if local {
		return nil, nil
	}
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if c, ok := s.conns[loc]; ok {
		return flight.NewFlightServiceClient(c), nil
	}
	c, err := s.router.Dial(ctx, loc)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "ServiceUnavailableException: the node holding the stream (%s) cannot be reached: %v", loc, err)
	}
	if s.conns == nil {
		s.conns = map[string]*grpc.ClientConn{}
	}
	s.conns[loc] = c
	return flight.NewFlightServiceClient(c), nil
}

// forwardedKey marks a call one node passed to another.
const forwardedKey = "x-sensorium-forwarded-by"

func forwarded(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	return len(md.Get(forwardedKey)) > 0
}

// outgoing carries the caller's credentials on to the node that serves the
// call, marked as passed on.
func outgoing(ctx context.Context) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	out := metadata.MD{forwardedKey: []string{"1"}}
	if v := md.Get("authorization"); len(v) > 0 {
		out["authorization"] = v
	}
	return metadata.NewOutgoingContext(ctx, out)
}

// relayDoGet streams another node's DoGet answer to the caller, message by
// message (no decoding: the Arrow IPC bytes pass through).
func relayDoGet(c flight.FlightServiceClient, t *flight.Ticket, fs flight.FlightService_DoGetServer) error {
	stream, err := c.DoGet(outgoing(fs.Context()), t)
	if err != nil {
		return err
	}
	for {
		fd, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fs.Send(fd); err != nil {
			return err
		}
	}
}

// closeConns closes the connections to other nodes.
func (s *Service) closeConns() {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.conns = nil
}
