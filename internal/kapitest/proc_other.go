//go:build !linux

package kapitest

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
