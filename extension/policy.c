/*
 * policy.c - see policy.h.
 */
#include "policy.h"

#include "limits.h"

void policy_flush_init(struct policy_flush *p, const struct config *cfg)
{
    *p = (struct policy_flush){
        .mode = cfg->flush,
        .eager_first = cfg->eager_first_invocations,
        .eager_idle_ms = (int64_t)cfg->eager_idle_s * 1000,
    };
}

bool policy_flush_decide(struct policy_flush *p, int64_t now_ms, bool can_export)
{
    bool eager;

    switch (p->mode) {
    case CONFIG_FLUSH_EAGER:
        eager = true;
        break;
    case CONFIG_FLUSH_BACKGROUND:
        eager = false;
        break;
    case CONFIG_FLUSH_AUTO:
    default:
        /* The first invocations of an environment, and any invocation of a
         * rarely invoked function, whose data would otherwise sit in a
         * frozen sandbox until the next invocation or SHUTDOWN, maybe hours
         * away. */
        eager = p->decisions < p->eager_first ||
                (p->last_invoke_ms > 0 && now_ms - p->last_invoke_ms >= p->eager_idle_ms);
        break;
    }
    p->decisions++;
    p->last_invoke_ms = now_ms;
    return eager && can_export && now_ms >= p->off_until_ms;
}

void policy_flush_off(struct policy_flush *p, int64_t now_ms)
{
    p->off_until_ms = now_ms + EXPORT_EAGER_OFF_MS;
}

void policy_hold_bounds(const struct config *cfg, int64_t deadline_ms, int64_t now_epoch_us,
                        int64_t now_ns, struct policy_hold *ret)
{
    int64_t bound_ms = (int64_t)cfg->buffer_timeout_ms + POLICY_EAGER_EXPORT_MAX_MS;
    int64_t run_ms;

    if (deadline_ms > 0) {
        run_ms = deadline_ms - now_epoch_us / 1000 - (int64_t)cfg->timeout_margin_ms;
        if (run_ms < 0)
            run_ms = 0;
    } else {
        run_ms = (int64_t)cfg->export_timeout_ms;
    }
    ret->bound_ms = bound_ms;
    ret->done_deadline_ns = now_ns + run_ms * 1000000;
    ret->start_deadline_ns = now_ns + bound_ms * 1000000;
    if (ret->start_deadline_ns > ret->done_deadline_ns)
        ret->start_deadline_ns = ret->done_deadline_ns;
}

int64_t policy_flush_left_ms(int64_t bound_ms, int64_t done_us, int64_t now_epoch_us)
{
    int64_t left_ms = POLICY_EAGER_EXPORT_MAX_MS;

    if (done_us > 0) {
        int64_t since_ms = (now_epoch_us - done_us) / 1000;
        if (bound_ms - since_ms < left_ms)
            left_ms = bound_ms - since_ms;
    }
    return left_ms;
}

void policy_shutdown_budget(int64_t deadline_ms, int64_t received_us, uint32_t telemetry_wait_ms,
                            int64_t now_epoch_us, int64_t now_ns, struct policy_shutdown *ret)
{
    int64_t received_ms = received_us / 1000;
    int64_t end_epoch_ms = deadline_ms > 0 ? deadline_ms : received_ms + SHUTDOWN_DEFAULT_BUDGET_MS;
    int64_t wait_end_ms = received_ms + (int64_t)telemetry_wait_ms;
    int64_t now_ms = now_epoch_us / 1000;

    if (deadline_ms > 0 && deadline_ms - SHUTDOWN_SAFETY_MARGIN_MS < wait_end_ms)
        wait_end_ms = deadline_ms - SHUTDOWN_SAFETY_MARGIN_MS;
    end_epoch_ms -= SHUTDOWN_EXIT_MARGIN_MS;
    if (wait_end_ms > end_epoch_ms)
        wait_end_ms = end_epoch_ms;
    /* On the monotonic clock from now; a wait already past is now.  A whole
     * budget already past: half of what is left of a deadline still ahead,
     * the late grace after a deadline already gone. */
    int64_t end_in_ms = end_epoch_ms - now_ms;
    if (end_in_ms <= 0) {
        int64_t deadline_in_ms = (deadline_ms > 0 ? deadline_ms : end_epoch_ms) - now_ms;
        end_in_ms = deadline_in_ms > 0 ? deadline_in_ms / 2 : SHUTDOWN_LATE_GRACE_MS;
    }
    ret->end_ns = now_ns + end_in_ms * 1000000;
    ret->telemetry_end_ns = now_ns + (wait_end_ms > now_ms ? wait_end_ms - now_ms : 0) * 1000000;
}
