// Package version is the in-module dependency of the reload fixture: the
// hot-reload test edits it and expects the function to answer the new
// value.
package version

// Version is what the reload fixture answers.
const Version = "v1"
