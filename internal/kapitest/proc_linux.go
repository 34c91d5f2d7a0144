package kapitest

import "syscall"

// sysProcAttr makes the kernel kill etcd and kube-apiserver when the test binary dies without calling
// Stop (a panic, a -timeout, a Ctrl-C), so no servers are left running after a failed test run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
