package idemddb

import (
	"bytes"
	"container/list"
	"sync"
	"time"
)

// Cache is a bounded, expiry-aware, in-process cache of COMPLETED records
// for one Store (one table), kept for the life of the process (for example
// one Lambda execution environment). A hit replays with zero DynamoDB
// requests. Entries are never served past their record's expiry. Entries are
// keyed by idempotency key only, so do not share a Cache between Stores of
// different tables. The zero value is not usable; call NewCache.
type Cache struct {
	mu       sync.Mutex
	max      int
	maxBytes int
	ll       *list.List // front = most recently used
	m        map[string]*list.Element
}

type cacheEntry struct {
	key     string
	fp      []byte
	result  []byte
	enc     int
	size    int
	expires time.Time
}

// NewCache returns a cache holding at most maxEntries records, none larger
// than maxResultBytes (a larger result is simply not cached). maxEntries < 1
// is treated as 1; maxResultBytes <= 0 means 64 KiB.
func NewCache(maxEntries, maxResultBytes int) *Cache {
	if maxEntries < 1 {
		maxEntries = 1
	}
	if maxResultBytes <= 0 {
		maxResultBytes = 64 << 10
	}
	return &Cache{max: maxEntries, maxBytes: maxResultBytes, ll: list.New(), m: make(map[string]*list.Element)}
}

// Len returns the number of cached records.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// get returns a live entry for key, dropping an expired one.
func (c *Cache) get(key string, now time.Time) (cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[key]
	if !ok {
		return cacheEntry{}, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.ll.Remove(el)
		delete(c.m, key)
		return cacheEntry{}, false
	}
	c.ll.MoveToFront(el)
	return *e, true
}

// put stores a COMPLETED record, evicting the least recently used entry.
func (c *Cache) put(key string, fp []byte, r *record) {
	if len(r.result) > c.maxBytes {
		return
	}
	e := &cacheEntry{key: key, fp: bytes.Clone(fp), result: bytes.Clone(r.result), enc: r.enc, size: r.size,
		expires: time.Unix(r.expiresAt, 0)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[key]; ok {
		el.Value = e
		c.ll.MoveToFront(el)
		return
	}
	c.m[key] = c.ll.PushFront(e)
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.m, old.Value.(*cacheEntry).key)
	}
}
