package ipam

import (
	"fmt"
	"strings"
)

// Selector is a parsed node selector: it matches a node's labels.
//
// The syntax is the subset of Calico's selector language that IPPool
// nodeSelectors use:
//
//	all()                      every node ("" means the same)
//	k == "v"    k != "v"       label equal / not equal (a missing label is != everything)
//	k in {"a", "b"}            label is one of
//	k not in {"a", "b"}        label missing or none of
//	has(k)                     label present
//	!E    E && E    E || E    (E)
//
// Strings take double or single quotes. Keys are Kubernetes label keys
// ([prefix/]name: letters, digits, '-', '_', '.', '/'). && binds tighter
// than ||, as in Calico.
type Selector struct {
	src   string
	match func(labels map[string]string) bool
}

// String is the selector's source text.
func (s Selector) String() string { return s.src }

// Matches reports whether the labels satisfy the selector. The zero
// Selector matches everything.
func (s Selector) Matches(labels map[string]string) bool {
	if s.match == nil {
		return true
	}
	return s.match(labels)
}

// ParseSelector parses a node selector. The error says where parsing stopped.
func ParseSelector(src string) (Selector, error) {
	p := &selParser{src: src}
	p.skip()
	if p.pos == len(src) {
		return Selector{src: src}, nil
	}
	m, err := p.or()
	if err != nil {
		return Selector{}, err
	}
	p.skip()
	if p.pos != len(src) {
		return Selector{}, p.errf("unexpected %q", src[p.pos:])
	}
	return Selector{src: src, match: m}, nil
}

type matcher = func(map[string]string) bool

type selParser struct {
	src string
	pos int
}

func (p *selParser) errf(f string, args ...any) error {
	return fmt.Errorf("selector at offset %d: %s", p.pos, fmt.Sprintf(f, args...))
}

func (p *selParser) skip() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t' || p.src[p.pos] == '\n') {
		p.pos++
	}
}

// eat consumes tok (after spaces) if it is next.
func (p *selParser) eat(tok string) bool {
	p.skip()
	if strings.HasPrefix(p.src[p.pos:], tok) {
		p.pos += len(tok)
		return true
	}
	return false
}

func (p *selParser) or() (matcher, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.eat("||") {
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		a := l
		l = func(m map[string]string) bool { return a(m) || r(m) }
	}
	return l, nil
}

func (p *selParser) and() (matcher, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.eat("&&") {
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		a := l
		l = func(m map[string]string) bool { return a(m) && r(m) }
	}
	return l, nil
}

func (p *selParser) unary() (matcher, error) {
	if p.eat("!") {
		e, err := p.unary()
		if err != nil {
			return nil, err
		}
		return func(m map[string]string) bool { return !e(m) }, nil
	}
	if p.eat("(") {
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		if !p.eat(")") {
			return nil, p.errf("want )")
		}
		return e, nil
	}
	if p.eat("all()") {
		return func(map[string]string) bool { return true }, nil
	}
	if p.eat("has(") {
		k, err := p.key()
		if err != nil {
			return nil, err
		}
		if !p.eat(")") {
			return nil, p.errf("want ) after has(%s", k)
		}
		return func(m map[string]string) bool { _, ok := m[k]; return ok }, nil
	}
	k, err := p.key()
	if err != nil {
		return nil, err
	}
	switch {
	case p.eat("=="):
		v, err := p.str()
		if err != nil {
			return nil, err
		}
		return func(m map[string]string) bool { x, ok := m[k]; return ok && x == v }, nil
	case p.eat("!="):
		v, err := p.str()
		if err != nil {
			return nil, err
		}
		return func(m map[string]string) bool { x, ok := m[k]; return !ok || x != v }, nil
	case p.eat("not in"):
		set, err := p.set()
		if err != nil {
			return nil, err
		}
		return func(m map[string]string) bool { x, ok := m[k]; return !ok || !set[x] }, nil
	case p.eat("in"):
		set, err := p.set()
		if err != nil {
			return nil, err
		}
		return func(m map[string]string) bool { x, ok := m[k]; return ok && set[x] }, nil
	}
	return nil, p.errf("want ==, !=, in or not in after %s", k)
}

func (p *selParser) key() (string, error) {
	p.skip()
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '/' {
			p.pos++
			continue
		}
		break
	}
	if p.pos == start {
		return "", p.errf("want a label key")
	}
	return p.src[start:p.pos], nil
}

func (p *selParser) str() (string, error) {
	p.skip()
	if p.pos >= len(p.src) || (p.src[p.pos] != '"' && p.src[p.pos] != '\'') {
		return "", p.errf("want a quoted string")
	}
	q := p.src[p.pos]
	end := strings.IndexByte(p.src[p.pos+1:], q)
	if end < 0 {
		return "", p.errf("unterminated string")
	}
	s := p.src[p.pos+1 : p.pos+1+end]
	p.pos += end + 2
	return s, nil
}

func (p *selParser) set() (map[string]bool, error) {
	if !p.eat("{") {
		return nil, p.errf("want {")
	}
	set := map[string]bool{}
	if p.eat("}") {
		return set, nil
	}
	for {
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		set[s] = true
		if p.eat("}") {
			return set, nil
		}
		if !p.eat(",") {
			return nil, p.errf("want , or }")
		}
	}
}
