package ipamstore

import (
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/resourceversion"
)

// overlay holds what this process knows of objects that is newer than
// the informer's cache: the objects its own writes returned, the fresh
// copies a lost compare-and-swap made it read, and tombstones of what it
// deleted. Reads resolve each name against it, so this process sees its
// own completed writes at once (the Store contract), while the informer
// follows everyone else's. An entry goes when the cache shows the same
// or a newer resourceVersion of the object (or its deletion), or after
// ttl as a safety net (a relist can skip a deletion's event).
//
// resourceVersions are compared as integers
// (k8s.io/apimachinery/pkg/util/resourceversion, KEP-5504: the API
// server's versions are comparable within a resource). One that is not
// well formed only ever matches itself.
type overlay[T metav1.Object] struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex // guards m
	m  map[string]entry[T]
}

// entry is one name's known state. obj nil with deleted set is a
// tombstone: cached versions up to rv are hidden.
type entry[T metav1.Object] struct {
	obj     T
	deleted bool
	rv      string
	at      time.Time
}

func newOverlay[T metav1.Object](ttl time.Duration) *overlay[T] {
	return &overlay[T]{ttl: ttl, now: time.Now, m: map[string]entry[T]{}}
}

// cmpRV compares two resourceVersions; ok is false when they cannot be
// compared (not integers) and differ.
func cmpRV(a, b string) (c int, ok bool) {
	if a == b {
		return 0, true
	}
	c, err := resourceversion.CompareResourceVersion(a, b)
	return c, err == nil
}

// put records an object this process wrote or read live, unless the
// overlay already knows a newer version of it.
func (o *overlay[T]) put(obj T) {
	o.mu.Lock()
	defer o.mu.Unlock()
	name := obj.GetName()
	if e, ok := o.m[name]; ok {
		if c, ok := cmpRV(obj.GetResourceVersion(), e.rv); ok && c < 0 {
			return
		}
	}
	o.m[name] = entry[T]{obj: obj, rv: obj.GetResourceVersion(), at: o.now()}
}

// tombstone records that the object is gone as of version rv: cached
// versions up to rv are hidden.
func (o *overlay[T]) tombstone(name, rv string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if e, ok := o.m[name]; ok && !e.deleted {
		// Our delete or a NotFound outranks what we wrote before it.
		if c, ok := cmpRV(e.rv, rv); ok && c > 0 {
			rv = e.rv
		}
	}
	var zero T
	o.m[name] = entry[T]{obj: zero, deleted: true, rv: rv, at: o.now()}
}

// observed is called with what the informer saw of name (an add or
// update at rv, or a deletion whose last version is rv) and drops the
// entry the cache has caught up with.
func (o *overlay[T]) observed(name, rv string, deletion bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e, ok := o.m[name]
	if !ok {
		return
	}
	c, cmpOK := cmpRV(rv, e.rv)
	switch {
	case deletion && (e.deleted || (cmpOK && c >= 0)):
		delete(o.m, name)
	case !deletion && !e.deleted && cmpOK && c >= 0:
		delete(o.m, name)
	case !deletion && e.deleted && cmpOK && c > 0:
		delete(o.m, name) // created again after our delete
	}
}

// resolve returns what to show for name, given the cache's object
// (cached, inCache). It drops entries the cache has caught up with.
func (o *overlay[T]) resolve(name string, cached T, inCache bool) (T, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e, ok := o.m[name]
	if !ok {
		return cached, inCache
	}
	if o.now().Sub(e.at) > o.ttl {
		delete(o.m, name)
		return cached, inCache
	}
	if inCache {
		c, cmpOK := cmpRV(cached.GetResourceVersion(), e.rv)
		if cmpOK && (c > 0 || (c == 0 && !e.deleted)) {
			delete(o.m, name)
			return cached, true
		}
	}
	if e.deleted {
		var zero T
		return zero, false
	}
	return e.obj, true
}

// names lists the names the overlay holds objects (not tombstones) of.
func (o *overlay[T]) names() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]string, 0, len(o.m))
	for n, e := range o.m {
		if !e.deleted {
			out = append(out, n)
		}
	}
	return out
}

// len is the number of entries (for tests).
func (o *overlay[T]) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.m)
}
