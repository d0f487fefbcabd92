package upload

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Secret is a credential kept out of the configuration: in a file (mode 0600 or
// stricter, owned by aod's user) or in an environment variable.
type Secret struct {
	File string
	Env  string
}

// maxSecret bounds what a secret file may hold; a SAS URL or a connection string
// is a few hundred bytes.
const maxSecret = 64 << 10

// Read returns the secret without surrounding white space.
func (s Secret) Read() (string, error) {
	switch {
	case s.File != "" && s.Env != "":
		return "", errors.New("both a file and an environment variable are given; give one")
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if !ok || strings.TrimSpace(v) == "" {
			return "", fmt.Errorf("environment variable %s is not set", s.Env)
		}
		return strings.TrimSpace(v), nil
	case s.File != "":
		fi, err := os.Stat(s.File)
		if err != nil {
			return "", err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("%s is readable by others (mode %04o); allowed: 0600 or stricter", s.File, fi.Mode().Perm())
		}
		if fi.Size() > maxSecret {
			return "", fmt.Errorf("%s is %d bytes; a secret is at most %d", s.File, fi.Size(), maxSecret)
		}
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", err
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("%s is empty", s.File)
		}
		return v, nil
	}
	return "", errors.New("no secret_file or secret_env is given")
}
