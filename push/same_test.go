package push

import "testing"

func TestSameImage(t *testing.T) {
	base := `{"architecture":"amd64","config":{"Env":["A=1"],"Labels":{"org.opencontainers.image.revision":"abc"}},"rootfs":{"type":"layers","diff_ids":["sha256:1"]},"moby.buildkit.cache.v0":"W3sx"}`
	cases := []struct {
		name string
		b    string
		want bool
	}{
		{"identical", base, true},
		{"other inline cache", `{"architecture":"amd64","config":{"Env":["A=1"],"Labels":{"org.opencontainers.image.revision":"abc"}},"rootfs":{"type":"layers","diff_ids":["sha256:1"]},"moby.buildkit.cache.v0":"W3sy"}`, true},
		{"no inline cache", `{"architecture":"amd64","config":{"Env":["A=1"],"Labels":{"org.opencontainers.image.revision":"abc"}},"rootfs":{"type":"layers","diff_ids":["sha256:1"]}}`, true},
		{"keys reordered", `{"rootfs":{"diff_ids":["sha256:1"],"type":"layers"},"moby.buildkit.cache.v0":"x","config":{"Labels":{"org.opencontainers.image.revision":"abc"},"Env":["A=1"]},"architecture":"amd64"}`, true},
		{"other label", `{"architecture":"amd64","config":{"Env":["A=1"],"Labels":{"org.opencontainers.image.revision":"def"}},"rootfs":{"type":"layers","diff_ids":["sha256:1"]},"moby.buildkit.cache.v0":"W3sx"}`, false},
		{"other env", `{"architecture":"amd64","config":{"Env":["A=2"],"Labels":{"org.opencontainers.image.revision":"abc"}},"rootfs":{"type":"layers","diff_ids":["sha256:1"]},"moby.buildkit.cache.v0":"W3sx"}`, false},
		{"extra key", `{"architecture":"amd64","os":"linux","config":{"Env":["A=1"],"Labels":{"org.opencontainers.image.revision":"abc"}},"rootfs":{"type":"layers","diff_ids":["sha256:1"]}}`, false},
		{"not json", `{`, false},
	}
	for _, c := range cases {
		if got := sameImage([]byte(base), []byte(c.b)); got != c.want {
			t.Errorf("%s: sameImage = %v, want %v", c.name, got, c.want)
		}
	}
}
