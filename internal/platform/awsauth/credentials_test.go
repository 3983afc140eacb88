package awsauth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, text string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadKeysFile(t *testing.T) {
	const good = `# keys of the plant's producers
[camera-1]
aws_access_key_id = AKIDCAMERA1EXAMPLE
aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY

; the analytics job
[profile analytics]
AWS_ACCESS_KEY_ID=AKIDANALYTICSEXAMPLE
aws_secret_access_key=   another/secret+key/0123456789
region = us-east-1

[settings-only]
region = eu-west-1
`
	keys, err := LoadKeysFile(writeFile(t, good, 0o600))
	if err != nil {
		t.Fatal(err)
	}
	if keys.Len() != 2 || strings.Join(keys.Profiles(), ",") != "analytics,camera-1" {
		t.Fatalf("keys %v", keys.Profiles())
	}
	if k, ok := keys.Lookup("AKIDANALYTICSEXAMPLE"); !ok || k.SecretAccessKey != "another/secret+key/0123456789" {
		t.Fatalf("analytics key %+v %v", k, ok)
	}

	bad := []struct {
		name, text string
		mode       os.FileMode
		want       string
	}{
		{"readable by others", good, 0o644, "chmod 600"},
		{"readable by group", good, 0o640, "chmod 600"},
		{"no keys", "[a]\nregion = x\n", 0o600, "no aws_access_key_id"},
		{"id without secret", "[a]\naws_access_key_id = AKIDCAMERA1EXAMPLE\n", 0o600, "needs both"},
		{"short id", "[a]\naws_access_key_id = AKID\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG\n", 0o600, "16 to 128"},
		{"short secret", "[a]\naws_access_key_id = AKIDCAMERA1EXAMPLE\naws_secret_access_key = short\n", 0o600, "shorter than 16"},
		{"one id twice", "[a]\naws_access_key_id = AKIDCAMERA1EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG\n[b]\naws_access_key_id = AKIDCAMERA1EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENGX\n", 0o600, "in both [a] and [b]"},
		{"a section twice", "[a]\n[a]\n", 0o600, "appears twice"},
		{"setting before a section", "aws_access_key_id = AKIDCAMERA1EXAMPLE\n", 0o600, "before the first [section]"},
		{"not key = value", "[a]\nwJalrXUtnFEMI/K7MDENG\n", 0o600, "line 2: expected key = value"},
		{"unclosed section", "[a\n", 0o600, "must end with ]"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadKeysFile(writeFile(t, c.text, c.mode))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
			if strings.Contains(err.Error(), "wJalrXUtnFEMI") {
				t.Fatalf("the error quotes a secret: %v", err)
			}
		})
	}
	if _, err := LoadKeysFile(filepath.Join(t.TempDir(), "absent")); err == nil {
		t.Fatal("a missing file was accepted")
	}
}

func TestClientKey(t *testing.T) {
	path := writeFile(t, "[default]\naws_access_key_id = AKIDDEFAULTEXAMPLE\naws_secret_access_key = default-secret-0123456789\n[cam]\naws_access_key_id = AKIDCAMEXAMPLE0001\naws_secret_access_key = cam-secret-0123456789\n", 0o600)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", path)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_PROFILE", "")
	cases := []struct {
		name, profile, envProfile, envID string
		wantID                           string
		wantErr                          bool
	}{
		{name: "default profile", wantID: "AKIDDEFAULTEXAMPLE"},
		{name: "AWS_PROFILE", envProfile: "cam", wantID: "AKIDCAMEXAMPLE0001"},
		{name: "--profile wins over the environment's keys", profile: "cam", envID: "AKIDENVIRONMENT001", wantID: "AKIDCAMEXAMPLE0001"},
		{name: "environment keys", envID: "AKIDENVIRONMENT001", wantID: "AKIDENVIRONMENT001"},
		{name: "unknown profile", profile: "nope", wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("AWS_PROFILE", c.envProfile)
			t.Setenv("AWS_ACCESS_KEY_ID", c.envID)
			if c.envID != "" {
				t.Setenv("AWS_SECRET_ACCESS_KEY", "environment-secret-0123")
			}
			k, ok, err := ClientKey(c.profile)
			if c.wantErr {
				if err == nil {
					t.Fatalf("want an error, got %+v", k)
				}
				return
			}
			if err != nil || !ok || k.AccessKeyID != c.wantID {
				t.Fatalf("key %q ok=%v err=%v, want %q", k.AccessKeyID, ok, err, c.wantID)
			}
		})
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "absent"))
	if _, ok, err := ClientKey(""); ok || err != nil {
		t.Fatalf("no credentials anywhere: ok=%v err=%v, want unsigned requests", ok, err)
	}
}
