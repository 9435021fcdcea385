/* state.json: the last successful online check, the server's last verdict, the signed answer
 * of the last valid check, the latest time seen (the clock-rollback check), and the server
 * and machine name of the last activation. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* the latest time seen is written at most this often: validating stays cheap, and a rollback
 * within this window is below any useful tolerance anyway */
#define LAST_SEEN_WRITE_INTERVAL 60

lc_status read_state(lc_client *client, cJSON **out)
{
    lc_status status = store_read(client, STATE_FILE, out);
    if (status == LC_OK && *out == NULL) {
        *out = cJSON_CreateObject();
        if (*out == NULL)
            return client_fail_oom(client);
    }
    return status;
}

/* Drop the last online answer's features (and the unsigned list older kits kept). */
void state_forget_answer(cJSON *state)
{
    cJSON_DeleteItemFromObjectCaseSensitive(state, "answer");
    cJSON_DeleteItemFromObjectCaseSensitive(state, "features");
}

lc_status state_reset(lc_client *client)
{
    cJSON *state = NULL;
    lc_status status = read_state(client, &state);
    if (status != LC_OK)
        return status;
    bool ok = json_set(state, "verdict", NULL) && json_set(state, "last_online_ok", NULL);
    state_forget_answer(state);
    status = ok ? store_write(client, STATE_FILE, state) : client_fail_oom(client);
    cJSON_Delete(state);
    return status;
}

int64_t state_time(const cJSON *state, const char *name)
{
    int64_t moment;
    return parse_time(json_any_str(state, name), &moment) ? moment : LC_NO_TIME;
}

bool set_time(cJSON *object, const char *name, int64_t moment)
{
    char *text = iso_time(moment);
    bool ok = (text != NULL || moment == LC_NO_TIME) && json_set_str(object, name, text);
    free(text);
    return ok;
}

int64_t last_seen(lc_client *client, const cJSON *state)
{
    int64_t stored = state_time(state, "last_seen");
    int64_t mem = client->last_seen_mem;
    if (stored == LC_NO_TIME || (mem != LC_NO_TIME && mem > stored))
        return mem;
    return stored;
}

/* Remember `now` as seen, writing it when it moved on enough; `reset` sets it (the caller
 * writes the state) after the server vouched for the license. */
void set_last_seen(lc_client *client, cJSON *state, int64_t now, bool reset)
{
    if (reset) {
        client->last_seen_mem = now;
        set_time(state, "last_seen", now);
        return;
    }
    if (client->last_seen_mem == LC_NO_TIME || now > client->last_seen_mem)
        client->last_seen_mem = now;
    int64_t stored = state_time(state, "last_seen");
    if (stored != LC_NO_TIME && now - stored < LAST_SEEN_WRITE_INTERVAL)
        return;
    set_time(state, "last_seen", now);
    /* a read-only data folder must not make a valid license invalid */
    store_write(client, STATE_FILE, state);
    client_clear_error(client);
}


char *state_server(lc_client *client)
{
    cJSON *state = NULL;
    if (store_read(client, STATE_FILE, &state) != LC_OK)
        client_clear_error(client);
    char *server = dup_or_null(json_str(state, "server"));
    cJSON_Delete(state);
    return server;
}
