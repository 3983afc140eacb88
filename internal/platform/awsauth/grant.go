package awsauth

import (
	"context"
	"fmt"
	"path"
	"strings"
)

// The operations a grant names: the seed service's (the names its API
// reference and IAM policies use) and Sensorium's own Query (POST /v1/query
// and Arrow Flight's GetFlightInfo, GetSchema and DoGet). Flight's
// ListFlights is a listing of streams, so it is ListStreams.
const (
	ActionCreateStream               = "CreateStream"
	ActionDescribeStream             = "DescribeStream"
	ActionListStreams                = "ListStreams"
	ActionUpdateStream               = "UpdateStream"
	ActionUpdateDataRetention        = "UpdateDataRetention"
	ActionDeleteStream               = "DeleteStream"
	ActionTagStream                  = "TagStream"
	ActionUntagStream                = "UntagStream"
	ActionListTagsForStream          = "ListTagsForStream"
	ActionGetDataEndpoint            = "GetDataEndpoint"
	ActionPutMedia                   = "PutMedia"
	ActionGetMedia                   = "GetMedia"
	ActionListFragments              = "ListFragments"
	ActionGetMediaForFragmentList    = "GetMediaForFragmentList"
	ActionGetClip                    = "GetClip"
	ActionGetHLSStreamingSessionURL  = "GetHLSStreamingSessionURL"
	ActionGetDASHStreamingSessionURL = "GetDASHStreamingSessionURL"
	ActionQuery                      = "Query"
)

// Actions lists every action a grant may name, in the order the docs list
// them.
var Actions = []string{
	ActionCreateStream, ActionDescribeStream, ActionListStreams, ActionUpdateStream, ActionUpdateDataRetention,
	ActionDeleteStream, ActionTagStream, ActionUntagStream, ActionListTagsForStream, ActionGetDataEndpoint,
	ActionPutMedia, ActionGetMedia, ActionListFragments, ActionGetMediaForFragmentList,
	ActionGetClip, ActionGetHLSStreamingSessionURL, ActionGetDASHStreamingSessionURL, ActionQuery,
}

// Grant is what one key may do: the credentials file's `streams =` and
// `actions =` lines of its section. A nil *Grant, or one with neither list,
// allows everything (a key without those lines, as before grants existed).
// Deny is the default: a key with `streams =` may touch only the streams
// those patterns match, one with `actions =` may call only those actions.
type Grant struct {
	// Streams are path.Match patterns over stream names ("pump-*",
	// "line.?", "cam-[0-9]"); nil: every stream. Stream names hold no '/',
	// so '*' matches any run of characters.
	Streams []string
	// Actions are the actions granted, expanded from the file's patterns
	// ("Get*") at load time; nil: every action.
	Actions map[string]bool
}

// Unrestricted reports whether g allows everything.
func (g *Grant) Unrestricted() bool {
	return g == nil || (g.Streams == nil && g.Actions == nil)
}

// AllowsAction reports whether g grants the action.
func (g *Grant) AllowsAction(action string) bool {
	return g == nil || g.Actions == nil || g.Actions[action]
}

// AllowsStream reports whether g covers the stream.
func (g *Grant) AllowsStream(name string) bool {
	if g == nil || g.Streams == nil {
		return true
	}
	for _, p := range g.Streams {
		if ok, _ := path.Match(p, name); ok { // patterns were checked at load
			return true
		}
	}
	return false
}

// AllStreams reports whether g covers every stream (no `streams =`, or a
// pattern that is just "*").
func (g *Grant) AllStreams() bool {
	if g == nil || g.Streams == nil {
		return true
	}
	for _, p := range g.Streams {
		if p == "*" {
			return true
		}
	}
	return false
}

// parseGrant reads a section's `streams` and `actions` lines; where says
// which file, section and line an error is about.
func parseGrant(streams, actions string, hasStreams, hasActions bool, where func(key string) string) (*Grant, error) {
	if !hasStreams && !hasActions {
		return nil, nil
	}
	g := &Grant{}
	if hasStreams {
		g.Streams = []string{}
		for _, p := range splitList(streams) {
			if err := checkStreamPattern(p); err != nil {
				return nil, fmt.Errorf("%s: %w", where("streams"), err)
			}
			g.Streams = append(g.Streams, p)
		}
		if len(g.Streams) == 0 {
			return nil, fmt.Errorf("%s: streams = needs at least one pattern (leave the line out to allow every stream)", where("streams"))
		}
	}
	if hasActions {
		g.Actions = map[string]bool{}
		for _, p := range splitList(actions) {
			matched, err := expandAction(p)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where("actions"), err)
			}
			for _, a := range matched {
				g.Actions[a] = true
			}
		}
		if len(g.Actions) == 0 {
			return nil, fmt.Errorf("%s: actions = needs at least one action (leave the line out to allow every action)", where("actions"))
		}
	}
	return g, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// checkStreamPattern refuses a pattern path.Match cannot use, and one that
// could never match a stream name (1–256 of [a-zA-Z0-9_.-]), which is a
// typo that would silently grant nothing.
func checkStreamPattern(p string) error {
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("stream pattern %q is not a valid glob (path.Match: %v)", p, err)
	}
	for _, c := range p {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_.-*?[]^\\", c)
		if !ok {
			return fmt.Errorf("stream pattern %q has %q, which no stream name holds (names are [a-zA-Z0-9_.-]; globs add * ? [ ])", p, c)
		}
	}
	return nil
}

// expandAction is the actions a pattern names: one name, or a glob with *
// ("Get*", "List*", "*"). Names are matched case-insensitively, as IAM
// does; an optional "kinesisvideo:" prefix (IAM's spelling) is taken. A
// pattern that names no action is an error: a typo must not grant nothing
// silently, nor be taken for a wildcard.
func expandAction(p string) ([]string, error) {
	q := strings.TrimPrefix(strings.ToLower(p), Service+":")
	if strings.ContainsAny(q, "?[]\\") {
		return nil, fmt.Errorf("action %q: only * is a wildcard in action names", p)
	}
	var out []string
	for _, a := range Actions {
		if ok, _ := path.Match(q, strings.ToLower(a)); ok {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("unknown action %q; the actions are %s", p, strings.Join(Actions, ", "))
	}
	return out, nil
}

// String is the grant as the credentials file would say it, for a start-up
// log line.
func (g *Grant) String() string {
	if g.Unrestricted() {
		return "everything"
	}
	streams, actions := "*", "*"
	if g.Streams != nil {
		streams = strings.Join(g.Streams, ",")
	}
	if g.Actions != nil {
		var a []string
		for _, name := range Actions {
			if g.Actions[name] {
				a = append(a, name)
			}
		}
		actions = strings.Join(a, ",")
	}
	return "streams=" + streams + " actions=" + actions
}

type identityKey struct{}

// WithIdentity returns ctx carrying who made a request, once its signature
// (or Flight credentials) verified: what the handlers authorize against.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom returns who made the request; ok is false when the server
// does not authenticate (no --credentials), which allows everything.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}
