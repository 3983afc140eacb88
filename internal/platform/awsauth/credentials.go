package awsauth

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Key is one access key: its id, its secret, the profile (section) of the
// credentials file it came from, which names the client in logs, and what
// the key may do.
type Key struct {
	AccessKeyID     string
	SecretAccessKey string
	Profile         string
	Grant           *Grant // nil: everything (grant.go)
}

// Keys are the access keys a server accepts, by access key id.
type Keys struct {
	byID   map[string]Key
	Source string // the file they were read from
}

// NewKeys returns a set of the given keys.
func NewKeys(keys ...Key) *Keys {
	k := &Keys{byID: map[string]Key{}}
	for _, key := range keys {
		k.byID[key.AccessKeyID] = key
	}
	return k
}

// Lookup returns the key with that access key id.
func (k *Keys) Lookup(id string) (Key, bool) {
	key, ok := k.byID[id]
	return key, ok
}

// ByProfile returns the key of a profile (section).
func (k *Keys) ByProfile(profile string) (Key, bool) {
	for _, key := range k.byID {
		if key.Profile == profile {
			return key, true
		}
	}
	return Key{}, false
}

// Len is the number of keys.
func (k *Keys) Len() int { return len(k.byID) }

// Profiles lists the profiles, sorted: for a start-up log line, never the
// secrets.
func (k *Keys) Profiles() []string {
	var p []string
	for _, key := range k.byID {
		p = append(p, key.Profile)
	}
	sort.Strings(p)
	return p
}

// LoadKeysFile reads the server's credentials file. Its format is the AWS
// shared credentials file (~/.aws/credentials): one section per client,
//
//	[camera-1]
//	aws_access_key_id = AKIDCAMERA1EXAMPLE
//	aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
//
// so the same file, or a copy of one section of it, configures the client's
// own AWS SDK (which ignores the lines it does not know). It holds secrets:
// it must not be readable by group or others.
//
// A section may narrow what its key may do (Grant): `streams = pump-*,line.?`
// (path.Match globs over stream names) and `actions = PutMedia,Get*` (the
// operations of Actions, * a wildcard). A bad glob or an unknown action is
// an error naming the section and the line, so that a typo is found at
// start-up rather than as a refusal, or a grant, in production.
func LoadKeysFile(path string) (*Keys, error) {
	profiles, err := readSecretFile(path)
	if err != nil {
		return nil, err
	}
	return keysOf(path, profiles)
}

// keysOf makes the keys of a credentials file's sections; path is for the
// error messages, which never quote a secret.
func keysOf(path string, profiles []section) (*Keys, error) {
	keys := &Keys{byID: map[string]Key{}, Source: path}
	for _, p := range profiles {
		id, secret := p.values["aws_access_key_id"], p.values["aws_secret_access_key"]
		switch {
		case id == "" && secret == "":
			continue // a section with other settings only (region, output)
		case id == "" || secret == "":
			return nil, fmt.Errorf("awsauth: %s: [%s] (line %d) needs both aws_access_key_id and aws_secret_access_key", path, p.name, p.line)
		case !validAccessKeyID(id):
			return nil, fmt.Errorf("awsauth: %s: [%s] (line %d): access key id %q must be 16 to 128 letters and digits", path, p.name, p.line, id)
		case len(secret) < 16:
			return nil, fmt.Errorf("awsauth: %s: [%s] (line %d): the secret access key is shorter than 16 characters", path, p.name, p.line)
		}
		if prev, dup := keys.byID[id]; dup {
			return nil, fmt.Errorf("awsauth: %s: access key id %s is in both [%s] and [%s]", path, id, prev.Profile, p.name)
		}
		streams, hasStreams := p.values["streams"]
		actions, hasActions := p.values["actions"]
		grant, err := parseGrant(streams, actions, hasStreams, hasActions, func(key string) string {
			return fmt.Sprintf("awsauth: %s: [%s] (line %d)", path, p.name, p.lines[key])
		})
		if err != nil {
			return nil, err
		}
		keys.byID[id] = Key{AccessKeyID: id, SecretAccessKey: secret, Profile: p.name, Grant: grant}
	}
	if len(keys.byID) == 0 {
		return nil, fmt.Errorf("awsauth: %s holds no aws_access_key_id / aws_secret_access_key pair", path)
	}
	return keys, nil
}

// ClientKey finds the key a client signs with, the way the AWS SDKs do:
// $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY, or else the profile
// (profile, or $AWS_PROFILE, or "default") of the shared credentials file
// ($AWS_SHARED_CREDENTIALS_FILE, or ~/.aws/credentials). ok is false when
// none is configured: the client then sends unsigned requests.
func ClientKey(profile string) (key Key, ok bool, err error) {
	id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if profile == "" && id != "" && secret != "" {
		return Key{AccessKeyID: id, SecretAccessKey: secret, Profile: "environment"}, true, nil
	}
	explicit := profile != ""
	if profile == "" {
		profile = os.Getenv("AWS_PROFILE")
	}
	if profile == "" {
		profile = "default"
	}
	path := os.Getenv("AWS_SHARED_CREDENTIALS_FILE")
	if path == "" {
		home, herr := os.UserHomeDir()
		if herr != nil {
			return Key{}, false, nil
		}
		path = filepath.Join(home, ".aws", "credentials")
	}
	profiles, err := readSecretFile(path)
	if os.IsNotExist(err) && !explicit {
		return Key{}, false, nil
	}
	if err != nil {
		return Key{}, false, err
	}
	for _, p := range profiles {
		if p.name == profile {
			id, secret := p.values["aws_access_key_id"], p.values["aws_secret_access_key"]
			if id == "" || secret == "" {
				return Key{}, false, fmt.Errorf("awsauth: %s: [%s] needs both aws_access_key_id and aws_secret_access_key", path, profile)
			}
			return Key{AccessKeyID: id, SecretAccessKey: secret, Profile: profile}, true, nil
		}
	}
	if explicit {
		return Key{}, false, fmt.Errorf("awsauth: %s has no profile [%s]", path, profile)
	}
	return Key{}, false, nil
}

type section struct {
	name   string
	line   int
	values map[string]string
	lines  map[string]int // where each key was set
}

// readSecretFile checks a credentials file's mode and parses it.
func readSecretFile(path string) ([]section, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("awsauth: %s: %w", path, err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("awsauth: %s has mode %04o: it holds secret keys and must not be readable by group or others (chmod 600 %s)", path, perm, path)
	}
	s, err := parseINI(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("awsauth: %s: %w", path, err)
	}
	return s, nil
}

// parseINI reads the shared credentials file's INI dialect: [section] lines,
// key = value lines, comments starting with # or ;, blank lines. Keys are
// case-insensitive; values are trimmed. Errors never quote a value: it may be
// a secret.
func parseINI(r io.Reader) ([]section, error) {
	var out []section
	sc := bufio.NewScanner(r)
	seen := map[string]bool{}
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("line %d: a section header must end with ]", n)
			}
			name := strings.TrimSpace(line[1 : len(line)-1])
			name = strings.TrimSpace(strings.TrimPrefix(name, "profile "))
			if name == "" {
				return nil, fmt.Errorf("line %d: a section needs a name", n)
			}
			if seen[name] {
				return nil, fmt.Errorf("line %d: section [%s] appears twice", n, name)
			}
			seen[name] = true
			out = append(out, section{name: name, line: n, values: map[string]string{}, lines: map[string]int{}})
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fmt.Errorf("line %d: expected key = value or [section]", n)
			}
			if len(out) == 0 {
				return nil, fmt.Errorf("line %d: a setting before the first [section]", n)
			}
			k = strings.ToLower(strings.TrimSpace(k))
			out[len(out)-1].values[k] = strings.TrimSpace(v)
			out[len(out)-1].lines[k] = n
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func validAccessKeyID(id string) bool {
	if len(id) < 16 || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Any returns one of the keys without a grant, the same one every time (the
// lowest access key id): the key a cluster node signs its requests to the
// other nodes with, since every node reads the same credentials file. The
// cluster's own routes take only such a key; ok is false when every key
// carries a grant.
func (k *Keys) Any() (Key, bool) {
	var best Key
	found := false
	for id, key := range k.byID {
		if !key.Grant.Unrestricted() {
			continue
		}
		if !found || id < best.AccessKeyID {
			best, found = key, true
		}
	}
	return best, found
}
