package server

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

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
	pw := make([]byte, 24)
	if _, err := rand.Read(pw); err != nil {
		return nil, err
	}
	users := []natsembed.User{{Name: internalUser, Password: hex.EncodeToString(pw)}}
	seen := map[string]bool{internalUser: true}
	for i, u := range f.Users {
		switch {
		case u.User == "" || u.Password == "":
			return nil, fmt.Errorf("server: --nats-auth %s: user %d needs a user and a password", path, i)
		case seen[u.User]:
			return nil, fmt.Errorf("server: --nats-auth %s: user %q appears twice (or is reserved)", path, u.User)
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
			// JetStream's publish acknowledgements. The server's own inboxes,
			// where its consumer gets every stream's fragments, are elsewhere
			// (natsembed.ServerInboxPrefix).
			nu.Subscribe = append(nu.Subscribe, "_INBOX.>")
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
