package awsauth

import (
	"os"
	"strings"
	"testing"
)

// The grant lines of a section: what they allow, and the start-up error of
// a bad one, which names the file's section and line.
func TestGrantLines(t *testing.T) {
	const head = "[ok]\naws_access_key_id = AKIDOKKEYEXAMPLE01\naws_secret_access_key = ok-secret-0123456789\n" +
		"[cam]\naws_access_key_id = AKIDCAMEXAMPLE0001\naws_secret_access_key = cam-secret-0123456789\n"
	type check struct {
		action, stream string
		want           bool
	}
	cases := []struct {
		name   string
		lines  string // the [cam] section's grant lines, from line 7
		err    string // want an error saying this
		checks []check
	}{
		{name: "no grant lines allow everything", checks: []check{
			{ActionDeleteStream, "anything", true}, {ActionPutMedia, "x.y", true}, {ActionQuery, "z", true}}},
		{name: "streams only", lines: "streams = pump-*, line.?\n", checks: []check{
			{ActionDeleteStream, "pump-1", true}, {ActionGetMedia, "line.a", true},
			{ActionGetMedia, "line.ab", false}, {ActionPutMedia, "pumps", false}, {ActionPutMedia, "xpump-1", false}}},
		{name: "actions only, wildcards", lines: "actions = PutMedia, Get*, list*\n", checks: []check{
			{ActionPutMedia, "any", true}, {ActionGetMedia, "any", true}, {ActionGetMediaForFragmentList, "any", true},
			{ActionGetDataEndpoint, "any", true}, {ActionListStreams, "any", true}, {ActionListFragments, "any", true},
			{ActionListTagsForStream, "any", true}, {ActionCreateStream, "any", false}, {ActionDeleteStream, "any", false},
			{ActionQuery, "any", false}, {ActionDescribeStream, "any", false}}},
		{name: "both, IAM spelling and star", lines: "streams = cam-[0-9]\nactions = kinesisvideo:PutMedia,Query\n", checks: []check{
			{ActionPutMedia, "cam-3", true}, {ActionQuery, "cam-9", true}, {ActionPutMedia, "cam-10", false},
			{ActionGetMedia, "cam-3", false}}},
		{name: "star grants every action", lines: "actions = *\nstreams = *\n", checks: []check{{ActionDeleteStream, "x", true}}},
		{name: "bad glob", lines: "streams = pump-[\n", err: "[cam] (line 7): stream pattern \"pump-[\" is not a valid glob"},
		{name: "bad glob after a good one", lines: "actions = GetMedia\nstreams = ok, [a-\n", err: "[cam] (line 8): stream pattern \"[a-\""},
		{name: "pattern no name can match", lines: "streams = pump 1\n", err: "[cam] (line 7): stream pattern \"pump 1\" has ' '"},
		{name: "slash", lines: "streams = a/b\n", err: "which no stream name holds"},
		{name: "unknown action", lines: "actions = PutMedia,GetMedai\n", err: "[cam] (line 7): unknown action \"GetMedai\"; the actions are CreateStream"},
		{name: "wildcard naming nothing", lines: "actions = Foo*\n", err: "unknown action \"Foo*\""},
		{name: "other wildcards", lines: "actions = Get?edia\n", err: "only * is a wildcard"},
		{name: "empty streams", lines: "streams =\n", err: "[cam] (line 7): streams = needs at least one pattern"},
		{name: "empty actions", lines: "actions = ,\n", err: "actions = needs at least one action"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			keys, err := LoadKeysFile(writeFile(t, head+c.lines, 0o600))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one saying %q", err, c.err)
				}
				if strings.Contains(err.Error(), "cam-secret") {
					t.Fatalf("the error quotes a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cam, _ := keys.Lookup("AKIDCAMEXAMPLE0001")
			for _, ch := range c.checks {
				if got := cam.Grant.AllowsAction(ch.action) && cam.Grant.AllowsStream(ch.stream); got != ch.want {
					t.Errorf("%s on %s: allowed %v, want %v (grant %s)", ch.action, ch.stream, got, ch.want, cam.Grant)
				}
			}
			if ok, _ := keys.Lookup("AKIDOKKEYEXAMPLE01"); !ok.Grant.Unrestricted() {
				t.Errorf("the section without grant lines is restricted: %s", ok.Grant)
			}
		})
	}
}

// A cluster node signs its fills with a key that has no grant: the
// cluster's own routes take only such a key.
func TestAnySkipsGrantedKeys(t *testing.T) {
	text := "[a]\naws_access_key_id = AAAAGRANTEDKEY001\naws_secret_access_key = a-secret-0123456789\nstreams = x\n" +
		"[b]\naws_access_key_id = BBBBFULLKEY000001\naws_secret_access_key = b-secret-0123456789\n"
	keys, err := LoadKeysFile(writeFile(t, text, 0o600))
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := keys.Any(); !ok || k.AccessKeyID != "BBBBFULLKEY000001" {
		t.Fatalf("Any = %s %v, want the key without a grant", k.AccessKeyID, ok)
	}
	keys, err = LoadKeysFile(writeFile(t, text[:strings.Index(text, "[b]")], 0o600))
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := keys.Any(); ok {
		t.Fatalf("Any = %s with every key granted", k.AccessKeyID)
	}
}

// The README lists every action a grant may name, so that the docs cannot
// drift from the code.
func TestREADMEListsEveryAction(t *testing.T) {
	b, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, a := range Actions {
		if !strings.Contains(readme, "`"+a+"`") {
			t.Errorf("README.md does not list the action %s", a)
		}
	}
}
