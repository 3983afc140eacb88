package server

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/sensorium-io/sensorium/internal/platform/awsauth"
	"github.com/sensorium-io/sensorium/internal/platform/wire"
	"github.com/sensorium-io/sensorium/internal/service/natsembed"
	"github.com/sensorium-io/sensorium/store"
)

// The NATS authorization file (`serve --nats-auth`, docs/NATS.md): who may
// connect to the embedded NATS server, and to which streams' subjects.
type natsAuthFile struct {
	Users []natsAuthUser `json:"users"`
}

type natsAuthUser struct {
	User     string   `json:"user"`
	Password string   `json:"password"` // plain, or a bcrypt hash ("$2a$…", from `nats server passwd`)
	Produce  []string `json:"produce"`  // streams it may produce into; "*" for all
	Consume  []string `json:"consume"`  // streams whose live frames it may read; "*" for all
}

// internalUser is the server's own login, with a fresh random password each
// start; it never leaves the process.
const internalUser = "sensorium-server"

// internalUsers is the start of every user list: the server's own login.
func internalUsers() ([]natsembed.User, error) {
	pw := make([]byte, 24)
	if _, err := rand.Read(pw); err != nil {
		return nil, err
	}
	return []natsembed.User{{Name: internalUser, Password: hex.EncodeToString(pw)}}, nil
}

// loadNATSAuth reads the authorization file and turns each user's streams
// into subject permissions. The file holds passwords, so like the keyring it
// must not be readable by group or others.
func loadNATSAuth(path string, subj wire.Subjects) ([]natsembed.User, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("server: --nats-auth: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("server: --nats-auth %s has mode %04o: it holds passwords and must not be readable by group or others (chmod 600)", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("server: --nats-auth: %w", err)
	}
	var f natsAuthFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("server: --nats-auth %s: %w", path, err)
	}
	users, err := internalUsers()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{internalUser: true}
	for i, u := range f.Users {
		switch {
		case u.User == "" || u.Password == "":
			return nil, fmt.Errorf("server: --nats-auth %s: user %d needs a user and a password", path, i)
		case seen[u.User]:
			return nil, fmt.Errorf("server: --nats-auth %s: user %q appears twice (or is reserved)", path, u.User)
		case len(u.Produce) > 0 && !natsembed.ValidInboxUser(u.User):
			return nil, fmt.Errorf("server: --nats-auth %s: user %q produces, so its name is its inbox prefix's token (%s…): use letters, digits, _ and - only", path, u.User, natsembed.UserInboxPrefix("<user>"))
		}
		seen[u.User] = true
		nu := natsembed.User{Name: u.User, Password: u.Password, Publish: []string{}, Subscribe: []string{}}
		for _, s := range u.Produce {
			tok, err := streamToken(s)
			if err != nil {
				return nil, fmt.Errorf("server: --nats-auth %s: user %q: %w", path, u.User, err)
			}
			nu.Publish = append(nu.Publish, subj.Prefix+"."+wire.KindFrag+"."+tok, subj.Prefix+"."+wire.KindLive+"."+tok)
			nu.Subscribe = append(nu.Subscribe, subj.Prefix+"."+wire.KindAck+"."+tok)
		}
		if len(u.Produce) > 0 {
			// JetStream's publish acknowledgements, in the user's own inboxes:
			// not the other producers' (natsembed.UserInboxPrefix), nor the
			// server's, where its consumer gets every stream's fragments.
			nu.Subscribe = append(nu.Subscribe, natsembed.UserInboxPrefix(u.User)+".>")
		}
		for _, s := range u.Consume {
			tok, err := streamToken(s)
			if err != nil {
				return nil, fmt.Errorf("server: --nats-auth %s: user %q: %w", path, u.User, err)
			}
			nu.Subscribe = append(nu.Subscribe, subj.Prefix+"."+wire.KindLive+"."+tok)
		}
		users = append(users, nu)
	}
	return users, nil
}

// keyUsers makes each access key of the credentials file a NATS login too
// (user: the access key id, password: the secret access key), with the
// subjects of its grant: PutMedia gives publish on frag.<stream> and
// live.<stream>, subscribe on ack.<stream> and its own inboxes; GetMedia
// gives subscribe on live.<stream>. A key without a grant gets them for
// every stream. NATS permissions are whole subject tokens, so a stream
// pattern is carried over when it is a name or "*"; a partial glob
// ("pump-*") has no NATS form, and its streams are left out (refused, never
// widened) — skipped names each such pattern, for a start-up warning.
func keyUsers(keys *awsauth.Keys, subj wire.Subjects, taken map[string]bool) (users []natsembed.User, skipped []string, err error) {
	for _, profile := range keys.Profiles() {
		k, _ := keys.ByProfile(profile)
		if taken[k.AccessKeyID] {
			return nil, nil, fmt.Errorf("server: access key id %s of --credentials is also a user of --nats-auth; NATS logins must be unique", k.AccessKeyID)
		}
		g := k.Grant
		var toks []string
		if g.AllStreams() {
			toks = []string{"*"}
		} else {
			for _, p := range g.Streams {
				if strings.ContainsAny(p, "*?[\\") || store.ValidateStreamName(p) != nil {
					skipped = append(skipped, fmt.Sprintf("[%s] streams = %s", profile, p))
					continue
				}
				toks = append(toks, wire.SubjectToken(p))
			}
		}
		u := natsembed.User{Name: k.AccessKeyID, Password: k.SecretAccessKey, Publish: []string{}, Subscribe: []string{}}
		if g.AllowsAction(awsauth.ActionPutMedia) {
			for _, tok := range toks {
				u.Publish = append(u.Publish, subj.Prefix+"."+wire.KindFrag+"."+tok, subj.Prefix+"."+wire.KindLive+"."+tok)
				u.Subscribe = append(u.Subscribe, subj.Prefix+"."+wire.KindAck+"."+tok)
			}
			u.Subscribe = append(u.Subscribe, natsembed.UserInboxPrefix(k.AccessKeyID)+".>")
		}
		if g.AllowsAction(awsauth.ActionGetMedia) {
			for _, tok := range toks {
				u.Subscribe = append(u.Subscribe, subj.Prefix+"."+wire.KindLive+"."+tok)
			}
		}
		users = append(users, u)
	}
	return users, skipped, nil
}

// anyGrant reports whether some key of the file carries a grant.
func anyGrant(keys *awsauth.Keys) bool {
	for _, p := range keys.Profiles() {
		if k, _ := keys.ByProfile(p); !k.Grant.Unrestricted() {
			return true
		}
	}
	return false
}

// streamToken is the subject token of a stream name, or "*" for all.
func streamToken(name string) (string, error) {
	if name == "*" {
		return "*", nil
	}
	if err := store.ValidateStreamName(name); err != nil {
		return "", err
	}
	return wire.SubjectToken(name), nil
}
