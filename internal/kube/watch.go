package kube

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
)

// Pauses between failed attempts, as client-go's reflector spaces them.
const (
	firstPause = 800 * time.Millisecond
	maxPause   = 30 * time.Second
)

// WatchNamed lists the object called name and hands it to observe (nil when it does not exist), then
// watches it and hands over each change (nil once it is deleted), until observe returns true (nil) or
// ctx ends (ctx's error). The list and the watch are restricted to name by a field selector, so that a
// Role limited by resourceNames suffices and the watch wakes only for that object.
//
// It does for one object what client-go's informers (watchtools.UntilWithSync) do, without linking
// them (0.4 MiB of the job's binary): the outcome of every list and watch request goes to onErr (nil
// on success), and a failed one is retried after a pause that doubles from 800 ms to 30 s; a watch the
// server closes is resumed from the last resourceVersion seen; one it cannot resume (410 Gone, or an
// error event) starts over with a list.
func WatchNamed(ctx context.Context, ri dynamic.ResourceInterface, name string, observe func(*unstructured.Unstructured) bool, onErr func(error)) error {
	w := &namedWatch{ri: ri, observe: observe, onErr: onErr, pause: firstPause,
		opts: metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()}}
	for {
		done, rv, err := w.list(ctx)
		for err == nil && !done {
			// rv is "" after an event the watch cannot resume from: list again.
			if done, rv, err = w.watch(ctx, rv); err == nil && rv == "" {
				break
			}
		}
		switch {
		case done:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			if err := w.wait(ctx); err != nil {
				return err
			}
		}
	}
}

type namedWatch struct {
	ri      dynamic.ResourceInterface
	opts    metav1.ListOptions
	observe func(*unstructured.Unstructured) bool
	onErr   func(error)
	pause   time.Duration
}

// list reads the object and hands it to observe; it returns observe's verdict and the list's
// resourceVersion to watch from.
func (w *namedWatch) list(ctx context.Context) (bool, string, error) {
	l, err := w.ri.List(ctx, w.opts)
	w.report(ctx, err)
	if err != nil {
		return false, "", err
	}
	w.pause = firstPause
	var obj *unstructured.Unstructured
	if len(l.Items) > 0 {
		obj = &l.Items[0]
	}
	return w.observe(obj), l.GetResourceVersion(), nil
}

// watch follows the object from resourceVersion rv until observe is satisfied (true), the server
// closes the watch (the last resourceVersion seen, to resume from) or cannot go on from rv (""), or
// the request fails (its error).
func (w *namedWatch) watch(ctx context.Context, rv string) (bool, string, error) {
	opts := w.opts
	opts.ResourceVersion = rv
	opts.AllowWatchBookmarks = true
	// As the reflector does: a random server-side timeout of 5 to 10 minutes spreads the re-watches.
	timeout := int64(300 + rand.IntN(300))
	opts.TimeoutSeconds = &timeout
	wi, err := w.ri.Watch(ctx, opts)
	w.report(ctx, err)
	if err != nil {
		return false, "", err
	}
	defer wi.Stop()
	start, events := time.Now(), 0
	for {
		select {
		case <-ctx.Done():
			return false, "", ctx.Err()
		case ev, ok := <-wi.ResultChan():
			if !ok {
				// As the reflector does: a watch closed at once and empty is a fault, not a timeout,
				// and must not turn into a loop of requests.
				if events == 0 && time.Since(start) < time.Second {
					err := fmt.Errorf("very short watch: the watch of %s lasted less than a second and received nothing", w.opts.FieldSelector)
					w.report(ctx, err)
					return false, "", err
				}
				return false, rv, nil
			}
			events++
			if ev.Type == watch.Error {
				err := apierrors.FromObject(ev.Object)
				w.report(ctx, err)
				if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
					return false, "", nil
				}
				return false, "", err
			}
			obj, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			rv = obj.GetResourceVersion()
			switch ev.Type {
			case watch.Added, watch.Modified:
				if w.observe(obj) {
					return true, rv, nil
				}
			case watch.Deleted:
				if w.observe(nil) {
					return true, rv, nil
				}
			}
		}
	}
}

// report hands a request's outcome to onErr, except the errors of shutting down.
func (w *namedWatch) report(ctx context.Context, err error) {
	if w.onErr != nil && (err == nil || ctx.Err() == nil) {
		w.onErr(err)
	}
}

// wait sleeps for the current pause, with up to as much again of jitter, and doubles it.
func (w *namedWatch) wait(ctx context.Context) error {
	d := w.pause + rand.N(w.pause)
	w.pause = min(2*w.pause, maxPause)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
