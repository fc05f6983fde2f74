package teststack

import "time"

// Poll calls cond every interval until it holds, for at most within, and
// reports whether it held; it returns as soon as cond holds. It is for the
// waits on what sends no event a test could wait on instead (a container
// or a server coming up in its own time, a wall-clock simulator's next
// step): a test waits for the condition, not for a duration.
func Poll(within, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for {
		if cond() {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		<-tk.C
	}
}
