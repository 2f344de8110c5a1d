package deploy_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/containernetworking/cni/libcni"

	"github.com/xvs-project/xvs/cniplugin"
)

// cniConflists are the CNI configurations under deploy/cni/.
var cniConflists = []string{"cni/10-xvs.conflist", "cni/10-xvs-chained.conflist"}

// TestCNIConflists: each conflist is what libcni loads, xvs-cni comes
// first, and its entry passes the plugin's own checks.
func TestCNIConflists(t *testing.T) {
	for _, f := range cniConflists {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		l, err := libcni.ConfListFromBytes(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(l.Plugins) == 0 || l.Plugins[0].Network.Type != "xvs-cni" {
			t.Fatalf("%s: xvs-cni is not first", f)
		}
		// The plugin sees its entry with the list's name and version.
		var entry map[string]any
		if err := json.Unmarshal(l.Plugins[0].Bytes, &entry); err != nil {
			t.Fatal(err)
		}
		entry["cniVersion"], entry["name"] = l.CNIVersion, l.Name
		conf, _ := json.Marshal(entry)
		if _, err := cniplugin.ParseConf(conf); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
