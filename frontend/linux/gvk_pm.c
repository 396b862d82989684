// SPDX-License-Identifier: GPL-2.0
/*
 * frontend/linux/gvk_pm.c: the guest's power events.
 *
 * Shutdown (`xl shutdown`: Linux's PV shutdown handler runs orderly_poweroff,
 * which ends in kernel_power_off). The xenbus core's own shutdown of a
 * frontend only sets FE=Closing and waits 5 s for BE=Closing, which
 * gv-backend never sets (it goes to Closed, docs/transport.md step 6): each
 * device would cost 5 s and stay Closing. So a reboot notifier (run before the
 * devices' shutdown) closes every device of this driver as an unbind would:
 * requests in flight drained, FE=Closing, BE=Closed (the backend has unmapped
 * every grant), FE=Closed.
 *
 * Save and restore (`xl save` / `xl restore`: Linux's PV suspend freezes the
 * devices, the domain is saved and later resumed in a new domain). In 6.1 the
 * virtio bus has no power management of its own: a transport calls
 * virtio_device_freeze/_restore from its callbacks (as virtio_pci does). Here
 * they come from a PM domain on the virtio device (a child of the xenbus
 * device: frozen before it, restored after it; and xenbus gives a frontend
 * no callback when a suspend is cancelled, a PM domain gets thaw).
 * virtio_device_freeze calls the driver's freeze (virtio_blk, virtio-rng), whose
 * reset closes the device as above (in-flight requests drained first) and
 * whose del_vqs ends every grant of the rings; so before the save nothing of
 * the guest is mapped and nothing is in flight. After the restore the grant
 * table is a new, empty one and the event channels are gone: the xenbus
 * resume (below) grants the bounce pool again on its refs, then the virtio
 * core's restore calls the driver's restore, whose find_vqs makes new rings
 * with new grants and new event channels and connects once the backend offers
 * the device of the new domain (gvk_main.c, backend_ready). A save cancelled
 * (the domain resumes where it was) thaws the same way, with the same backend.
 */
#include <linux/module.h>
#include <linux/reboot.h>
#include <linux/pm.h>
#include <linux/pm_domain.h>
#include <xen/xenbus.h>
#include "gvk.h"

static struct xenbus_driver *gvk_drv;

static int shut_one(struct device *dev, void *data)
{
	struct gvk_dev *gd = dev_get_drvdata(dev);

	if (gd) {
		gvk_shut(gd);
		dev_info(dev, "closed for %s: grants active %d, leaked %d\n", (const char *)data,
		         atomic_read(&gd->grants_active), atomic_read(&gd->grants_leaked));
	}
	return 0;
}

static int gvk_reboot(struct notifier_block *nb, unsigned long action, void *unused)
{
	const char *what = action == SYS_POWER_OFF ? "power off" :
	                   action == SYS_HALT ? "halt" : "reboot";

	if (gvk_drv && driver_for_each_device(&gvk_drv->driver, NULL, (void *)what, shut_one))
		pr_warn("grant_virtio: cannot walk the devices to close them for %s\n", what);
	return NOTIFY_DONE;
}

static struct notifier_block gvk_reboot_nb = {
	.notifier_call = gvk_reboot,
};

int gvk_pm_init(struct xenbus_driver *drv)
{
	gvk_drv = drv;
	return register_reboot_notifier(&gvk_reboot_nb);
}

void gvk_pm_exit(void)
{
	unregister_reboot_notifier(&gvk_reboot_nb);
	gvk_drv = NULL;
}

static int gvk_vdev_freeze(struct device *dev)
{
	return virtio_device_freeze(dev_to_virtio(dev));
}

static int gvk_vdev_restore(struct device *dev)
{
	return virtio_device_restore(dev_to_virtio(dev));
}

struct dev_pm_domain gvk_vdev_pm_domain = {
	.ops = {
		.freeze = gvk_vdev_freeze,
		.thaw = gvk_vdev_restore,       /* suspend cancelled: same domain, same backend */
		.restore = gvk_vdev_restore,    /* after xl restore: a new domain */
	},
};

/* xenbus restore: the guest runs in a new domain (xl restore). The xenbus
 * core has read the backend's new path and sets the frontend Initialising;
 * the backend's state of the old domain means nothing any more. */
int gvk_xb_resume(struct xenbus_device *xb)
{
	struct gvk_dev *gd = dev_get_drvdata(&xb->dev);

	if (!gd)
		return 0;
	mutex_lock(&gd->lock);
	gd->be_domid = xb->otherend_id;
	WRITE_ONCE(gd->be_state, XenbusStateUnknown);
	gd->resumed = true;
	if (gd->phase == GVK_CONNECTED || gd->phase == GVK_CONNECTING) {
		/* still connected across the save: the virtio device was not
		 * frozen (no driver freeze), so its rings' grants are gone with
		 * the old domain; fail its I/O rather than let it wait */
		dev_err(&xb->dev, "restored while connected (the driver did not freeze the device): "
		        "requests fail with I/O errors; unload the module to release the device\n");
		WRITE_ONCE(gd->dead, true);
		gd->phase = GVK_STOPPED;
		schedule_work(&gd->fail_work);
	} else {
		/* closed before the save (or never connected): the driver's
		 * restore connects it again (find_vqs); nothing here to close */
		gd->phase = gd->gv ? GVK_REGISTERED : GVK_IDLE;
	}
	mutex_unlock(&gd->lock);
	gvk_dma_resume(gd);
	dev_info(&xb->dev, "restored: backend %s, dma %s%s\n", xb->otherend,
	         gvk_strategy_name(gd->strategy), gd->pool ? " (bounce pool granted again)" : "");
	return 0;
}
