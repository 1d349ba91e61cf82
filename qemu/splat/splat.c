// SPDX-License-Identifier: GPL-2.0
/*
 * splat: provoke one kind of kernel report on purpose, so the harness's
 * splat detector can be tested on real kernel logs (scripts/splat-fixtures.sh).
 * Never part of a normal guest: only the fixture run loads it.
 *
 *   insmod splat.ko what=warn|lockdep|kasan|hung|leak
 *
 * Module init does the deed and fails with -EAGAIN, so nothing stays loaded.
 */
#include <linux/delay.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/slab.h>

static char *what = "";
module_param(what, charp, 0);

static DEFINE_MUTEX(splat_a);
static DEFINE_MUTEX(splat_b);
static void *splat_leaked;

static int __init splat_init(void)
{
	if (!strcmp(what, "warn")) {
		WARN(1, "splat: provoked warning\n");
	} else if (!strcmp(what, "lockdep")) {
		/* A then B, later B then A: lockdep reports the inversion. */
		mutex_lock(&splat_a);
		mutex_lock(&splat_b);
		mutex_unlock(&splat_b);
		mutex_unlock(&splat_a);
		mutex_lock(&splat_b);
		mutex_lock(&splat_a);
		mutex_unlock(&splat_a);
		mutex_unlock(&splat_b);
	} else if (!strcmp(what, "kasan")) {
		char *p = kmalloc(16, GFP_KERNEL);
		size_t i = 16;

		if (!p)
			return -ENOMEM;
		OPTIMIZER_HIDE_VAR(i);
		pr_info("splat: read past the end: %d\n", READ_ONCE(p[i]));
		kfree(p);
	} else if (!strcmp(what, "hung")) {
		/* Uninterruptible sleep longer than hung_task_timeout_secs. */
		schedule_timeout_uninterruptible(8 * HZ);
	} else if (!strcmp(what, "leak")) {
		splat_leaked = kmalloc(128, GFP_KERNEL);
		/* Forget it: kmemleak's next scan reports it. */
		splat_leaked = NULL;
	} else {
		pr_err("splat: unknown what='%s'\n", what);
		return -EINVAL;
	}
	return -EAGAIN;
}
module_init(splat_init);

MODULE_DESCRIPTION("Provoke kernel splats for the rbfs harness's detector tests");
MODULE_LICENSE("GPL");
