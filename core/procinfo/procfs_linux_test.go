package procinfo

import (
	"slices"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseStat(t *testing.T) {
	st, err := parseStat([]byte("1234 (we (ird) name) S 77 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100 18446744073709551615\n"))
	if err != nil || st.comm != "we (ird) name" || st.ppid != 77 || st.start != 987654 {
		t.Fatalf("%+v %v", st, err)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 2", "1 (x) S notanumber 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestDisplayName(t *testing.T) {
	for _, c := range []struct{ comm, path, want string }{
		{"curl", "/usr/bin/curl", "curl"},
		{"git-remote-http", "/usr/lib/git-core/git-remote-https", "git-remote-https"},
		{"Web Content", "/usr/lib/firefox/firefox", "Web Content"},
		{"python3", "/usr/bin/python3.11", "python3"},
		{"", "/usr/bin/x", "x"},
		{"abcdefghijklmno", "/x/other-long-name-here", "abcdefghijklmno"},
	} {
		if got := displayName(c.comm, c.path); got != c.want {
			t.Errorf("displayName(%q, %q) = %q, want %q", c.comm, c.path, got, c.want)
		}
	}
}

// A listing reads the fds the last one did not see first, then sockets
// newest first, other files last.
func TestSnapshotOrder(t *testing.T) {
	s := fdSnapshot{3: 0, 5: 100, 7: 200}
	got := []int{3, 5, 7, 9, 4}
	s.order(got)
	if want := []int{9, 4, 7, 5, 3}; !slices.Equal(got, want) {
		t.Fatalf("order = %v, want %v", got, want)
	}
	e := &procEntry{}
	e.learn([]fdRead{{3, 0}, {5, 100}, {7, 200}}, 3, true)
	if n, ok := e.fdOf(200); !ok || n != 7 {
		t.Fatalf("fdOf(200) = %d, %v; want 7", n, ok)
	}
	if _, ok := e.fdOf(300); ok {
		t.Fatal("fdOf of an inode never seen")
	}
	e.learn([]fdRead{{7, 300}}, 3, false) // fd 7 reused
	if _, ok := e.fdOf(200); ok {
		t.Fatal("fdOf of an inode whose fd was reused")
	}
	if n, ok := e.fdOf(300); !ok || n != 7 {
		t.Fatalf("fdOf(300) = %d, %v; want 7", n, ok)
	}
}

func TestReadFDs(t *testing.T) {
	dir, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dir)
	fds, err := readFDs(dir, maxFDs, new(listingBuf))
	if err != nil {
		t.Fatal(err)
	}
	names, err := readNames(dir, maxFDs)
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for _, n := range names {
		if v, err := strconv.Atoi(n); err == nil {
			want = append(want, v)
		}
	}
	if !slices.Equal(fds, want) || !slices.Contains(fds, dir) {
		t.Fatalf("readFDs = %v, want %v (with %d)", fds, want, dir)
	}
}

func TestSocketInode(t *testing.T) {
	for link, want := range map[string]uint64{
		"socket:[12345]": 12345, "socket:[0]": 0, "socket:[012]": 0, "socket:[]": 0,
		"socket:[12a]": 0, "pipe:[12345]": 0, "/dev/null": 0, "socket:[99999999999999999999]": 0,
	} {
		if got := socketInode([]byte(link)); got != want {
			t.Errorf("socketInode(%q) = %d, want %d", link, got, want)
		}
	}
}
