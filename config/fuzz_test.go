package config

import "testing"

// FuzzResolve: no file, however malformed, may panic the parser or the
// validator; a file that validates has only ports and routes it can name.
func FuzzResolve(f *testing.F) {
	f.Add([]byte(goodYAML))
	f.Add([]byte("ports:\n  - name: veth1\n    kind: pod\n    addresses: [10.0.0.1/32, 10.0.0.1/32]\n"))
	f.Add([]byte("routes:\n  - prefix: ::/0\n    via: fe80::1%eth0\n    port: eth0\n"))
	f.Add([]byte("workers: 99999999999999999999\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			return
		}
		c, err := file.Resolve(testOpts)
		if err != nil {
			return
		}
		if len(c.Switch.Ports) != len(file.Ports) || len(c.Switch.Routes) != len(file.Routes) {
			t.Fatalf("resolved %d ports %d routes from %d and %d", len(c.Switch.Ports), len(c.Switch.Routes), len(file.Ports), len(file.Routes))
		}
		for _, r := range c.Switch.Routes {
			if !r.Prefix.IsValid() || r.Prefix.Masked() != r.Prefix {
				t.Fatalf("route prefix %v accepted", r.Prefix)
			}
		}
	})
}
