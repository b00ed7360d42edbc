/*
 * heldcap.c - the held-connection cap's dispatch (heldcap.h).
 */
#include "fcgi/heldcap.h"

#include <stddef.h>

int heldcap_acquire(struct heldcap *cap, const char *user, int hold_s, struct heldcap_slot **slot,
                    int *retry_after, struct lark_err *err)
{
    *slot = NULL;
    return cap->ops->acquire(cap, user, hold_s, slot, retry_after, err);
}

void heldcap_release(struct heldcap *cap, struct heldcap_slot *slot)
{
    if (slot)
        cap->ops->release(cap, slot);
}

void heldcap_free(struct heldcap *cap)
{
    if (cap)
        cap->ops->free(cap);
}
