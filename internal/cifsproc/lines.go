package cifsproc

import (
	"bufio"
	"bytes"
)

// eachLine calls fn with every line of a /proc/fs/cifs file. Lines are bounded at
// 1 MiB; a longer one ends the scan with an error (bufio.ErrTooLong).
func eachLine(data []byte, fn func(string)) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		fn(sc.Text())
	}
	return sc.Err()
}
