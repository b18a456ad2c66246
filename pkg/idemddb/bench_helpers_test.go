package idemddb_test

import (
	"crypto/sha256"
	"encoding/base64"
)

func sha(b []byte) []byte { h := sha256.Sum256(b); return h[:] }

func encodeStd(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
