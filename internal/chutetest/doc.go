// Package chutetest has the helpers chute's tests share: a fake clock,
// brokers opened with cleanup, and polling with a deadline (never a sleep
// standing in for synchronisation).
package chutetest
