// Package ddbmemdiff proves the in-memory engine (pkg/idemddb/ddbmem)
// faithful by differential tests: the same randomized request sequences run
// on ddbmem and on moto must give the same answers and the same items. It
// holds only tests.
package ddbmemdiff
