// Package openshifttest plays, on a plain kube-apiserver (internal/kapitest), the parts of OpenShift
// and of the operators it installs that change what Argo CD applied or decide what its health checks
// read, so that a test of the tree under a real Argo CD (internal/argocdtest) meets them:
//
//   - PullSecrets: openshift-controller-manager's ServiceAccount image pull-secret controller (every
//     ServiceAccount gets a <sa>-dockercfg-<5 chars> Secret appended to its imagePullSecrets);
//   - SCC: the namespace-security-allocation controller's openshift.io/sa.scc.* annotations on every
//     namespace, and SCC admission's user, group and SELinux level on every pod (not its template);
//   - OLM: a Subscription resolved against a catalog (package, channel, startingCSV), its InstallPlan
//     (Manual approval waits for a person), the CSV and the operator's CRDs, with the status OLM writes;
//   - CloudNativePG: what its operator does to the API and to PostgreSQL for a Cluster and its
//     Databases (Services, Secrets, managed roles on a real PostgreSQL, status).
//
// Each stand-in is driven by watches, as the component it plays, and its doc comment names the upstream
// source it follows. None of them runs a container.
package openshifttest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Logf receives one line per thing a stand-in does; nil discards them.
type Logf func(format string, args ...any)

func (l Logf) printf(format string, args ...any) {
	if l != nil {
		l(format, args...)
	}
}

// informerFactory is what the typed and the dynamic informer factories share.
type informerFactory interface {
	Start(stopCh <-chan struct{})
	Shutdown()
}

// controller is a work queue of object keys with workers calling sync, retried with back-off on error,
// as controllers built on client-go do.
type controller struct {
	name  string
	queue workqueue.TypedRateLimitingInterface[string]
	sync  func(ctx context.Context, key string) error
	log   Logf
}

func newController(name string, log Logf, sync func(ctx context.Context, key string) error) *controller {
	return &controller{
		name: name, log: log, sync: sync,
		queue: workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[string](
			100*time.Millisecond, 5*time.Second)),
	}
}

// enqueue adds obj's namespace/name key.
func (c *controller) enqueue(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		c.queue.Add(key)
	}
}

func (c *controller) handler() cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
		DeleteFunc: c.enqueue,
	}
}

// run starts the factories' informers and the workers; it returns once the informers have synced, and
// everything stops when ctx ends (wg tracks the goroutines).
func (c *controller) run(ctx context.Context, wg *sync.WaitGroup, workers int, factories []informerFactory, synced ...cache.InformerSynced) error {
	for _, f := range factories {
		f.Start(ctx.Done())
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		c.queue.ShutDown()
		for _, f := range factories {
			f.Shutdown()
		}
	}()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("%s: informers did not sync", c.name)
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c.next(ctx) {
			}
		}()
	}
	return nil
}

func (c *controller) next(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	if err := c.sync(ctx, key); err != nil {
		if ctx.Err() != nil {
			return true
		}
		c.log.printf("%s: %s: %v (retrying)", c.name, key, err)
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

var everything = labels.Everything()
