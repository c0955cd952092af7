package gateway

// stackFrame is the stack a call's goroutine reserves before it starts the
// call's work: room for the deepest path a call takes (the edge, the
// decision, connect-go's handler and client, OpenTelemetry, net/http's
// HTTP/2 client), which fits in 16 KiB.
//
// net/http runs each HTTP/2 stream's handler on a new goroutine with the
// runtime's smallest stack, 2 KiB. The runtime doubles a stack that
// overflows by copying it whole, and the copy walks every frame on it:
// a call that grows its stack as it goes deeper pays two or three copies
// of a deep stack, which measured a tenth of the gateway's CPU per call
// (runtime.newstack in the profile of BENCHMARKS.md). One frame of this
// size, taken while the stack is a few frames deep, grows it once, to 16
// KiB, which the runtime takes from and gives back to its per-thread stack
// cache, and the call's work then runs in that room.
const stackFrame = 12 << 10

// reserveStack grows the calling goroutine's stack to hold what a call
// needs, in one step while it is shallow.
//
//go:noinline
func reserveStack() {
	var frame [stackFrame]byte
	touchFrame(&frame)
}

// touchFrame uses the frame, so that the compiler keeps it.
//
//go:noinline
func touchFrame(frame *[stackFrame]byte) { frame[len(frame)-1] = 1 }
