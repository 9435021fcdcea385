/* The result structs: freeing, copying, and the JSON the Python kit prints for them
 * (`to_dict()`: the same keys, times as "2026-06-01T12:00:00Z" or null). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void lc_free(void *memory)
{
    free(memory);
}

void lc_validation_free(lc_validation *validation)
{
    if (validation == NULL)
        return;
    free(validation->code);
    free(validation->reason);
    free(validation->license_id);
    free(validation->installation_id);
    free(validation->machine_name);
    free(validation->product);
    free(validation->customer_id);
    free_strings(validation->features, validation->feature_count);
    free(validation);
}

void lc_lease_free(lc_lease *lease)
{
    if (lease == NULL)
        return;
    free(lease->lease_id);
    free(lease->license_id);
    free(lease->installation_id);
    free(lease->machine_name);
    free(lease->certificate);
    free(lease->server);
    free(lease);
}

void lc_status_report_free(lc_status_report *report)
{
    if (report == NULL)
        return;
    lc_validation_free(report->validation);
    free(report->installation_id);
    free(report->data_dir);
    free(report->server);
    free(report->license_id);
    free(report->machine_name);
    free(report->product);
    free(report->customer_id);
    free_strings(report->features, report->feature_count);
    free(report->source);
    lc_lease_free(report->lease);
    free(report);
}

void lc_lease_status_free(lc_lease_status *status)
{
    if (status == NULL)
        return;
    free(status->state);
    free(status->reason);
    lc_lease_free(status->lease);
    free(status->error_code);
    free(status->error_message);
    free(status);
}

lc_lease *lease_copy(const lc_lease *lease)
{
    if (lease == NULL)
        return NULL;
    lc_lease *copy = calloc(1, sizeof *copy);
    if (copy == NULL)
        return NULL;
    *copy = *lease;
    copy->lease_id = dup_or_null(lease->lease_id);
    copy->license_id = dup_or_null(lease->license_id);
    copy->installation_id = dup_or_null(lease->installation_id);
    copy->machine_name = dup_or_null(lease->machine_name);
    copy->certificate = dup_or_null(lease->certificate);
    copy->server = dup_or_null(lease->server);
    if ((lease->lease_id && !copy->lease_id) || (lease->license_id && !copy->license_id) ||
        (lease->installation_id && !copy->installation_id) ||
        (lease->machine_name && !copy->machine_name) ||
        (lease->certificate && !copy->certificate) || (lease->server && !copy->server)) {
        lc_lease_free(copy);
        return NULL;
    }
    return copy;
}

static bool add_time(cJSON *object, const char *name, int64_t moment)
{
    char *text = iso_time(moment);
    bool ok = (text != NULL || moment == LC_NO_TIME) && json_set_str(object, name, text);
    free(text);
    return ok;
}

static bool add_strings(cJSON *object, const char *name, char *const *strings, size_t count)
{
    cJSON *list = cJSON_CreateArray();
    if (list == NULL)
        return false;
    for (size_t i = 0; i < count; i++) {
        cJSON *item = cJSON_CreateString(strings[i]);
        if (item == NULL || !cJSON_AddItemToArray(list, item)) {
            cJSON_Delete(item);
            cJSON_Delete(list);
            return false;
        }
    }
    return json_set(object, name, list);
}

static cJSON *validation_json(const lc_validation *v)
{
    cJSON *object = cJSON_CreateObject();
    if (object == NULL || !json_set(object, "valid", cJSON_CreateBool(v->valid)) ||
        !json_set_str(object, "code", v->code) || !json_set_str(object, "reason", v->reason) ||
        !json_set(object, "online", cJSON_CreateBool(v->online)) ||
        !add_time(object, "checked_at", v->checked_at) ||
        !json_set_str(object, "license_id", v->license_id) ||
        !json_set_str(object, "installation_id", v->installation_id) ||
        !json_set_str(object, "machine_name", v->machine_name) ||
        !json_set_str(object, "product", v->product) ||
        !json_set_str(object, "customer_id", v->customer_id) ||
        !add_time(object, "expires_at", v->expires_at) ||
        !add_time(object, "grace_until", v->grace_until) ||
        !add_strings(object, "features", v->features, v->feature_count)) {
        cJSON_Delete(object);
        return NULL;
    }
    return object;
}

static cJSON *lease_json(const lc_lease *lease)
{
    cJSON *object = cJSON_CreateObject();
    if (object == NULL || !json_set_str(object, "lease_id", lease->lease_id) ||
        !json_set_str(object, "license_id", lease->license_id) ||
        !json_set_str(object, "installation_id", lease->installation_id) ||
        !json_set_str(object, "machine_name", lease->machine_name) ||
        !add_time(object, "expires_at", lease->expires_at) ||
        !add_time(object, "issued_at", lease->issued_at) ||
        !json_set(object, "borrowed", cJSON_CreateBool(lease->borrowed)) ||
        !json_set_str(object, "server", lease->server) ||
        !json_set_str(object, "certificate", lease->certificate)) {
        cJSON_Delete(object);
        return NULL;
    }
    return object;
}

static cJSON *report_json(const lc_status_report *r)
{
    cJSON *object = cJSON_CreateObject();
    cJSON *validation = r->validation ? validation_json(r->validation) : NULL;
    cJSON *lease = r->lease ? lease_json(r->lease) : NULL;
    if (object == NULL || (r->validation && validation == NULL) || (r->lease && lease == NULL)) {
        cJSON_Delete(object);
        cJSON_Delete(validation);
        cJSON_Delete(lease);
        return NULL;
    }
    if (!json_set(object, "activated", cJSON_CreateBool(r->activated)) ||
        !json_set_str(object, "installation_id", r->installation_id) ||
        !json_set_str(object, "data_dir", r->data_dir) ||
        !json_set(object, "validation", validation) || !json_set_str(object, "server", r->server) ||
        !json_set_str(object, "license_id", r->license_id) ||
        !json_set_str(object, "machine_name", r->machine_name) ||
        !json_set_str(object, "product", r->product) ||
        !json_set_str(object, "customer_id", r->customer_id) ||
        !add_time(object, "activated_at", r->activated_at) ||
        !add_time(object, "expires_at", r->expires_at) ||
        !add_time(object, "last_online_check", r->last_online_check) ||
        !add_time(object, "grace_until", r->grace_until) ||
        !add_strings(object, "features", r->features, r->feature_count) ||
        !json_set_str(object, "source", r->source) || !json_set(object, "lease", lease)) {
        cJSON_Delete(object);
        return NULL;
    }
    return object;
}

static lc_status print(cJSON *object, char **json)
{
    if (object == NULL)
        return LC_ERR_NO_MEMORY;
    *json = json_print_sorted(object);
    cJSON_Delete(object);
    return *json != NULL ? LC_OK : LC_ERR_NO_MEMORY;
}

lc_status lc_validation_to_json(const lc_validation *validation, char **json)
{
    if (validation == NULL || json == NULL)
        return LC_ERR_USAGE;
    return print(validation_json(validation), json);
}

lc_status lc_status_report_to_json(const lc_status_report *report, char **json)
{
    if (report == NULL || json == NULL)
        return LC_ERR_USAGE;
    return print(report_json(report), json);
}

lc_status lc_lease_to_json(const lc_lease *lease, char **json)
{
    if (lease == NULL || json == NULL)
        return LC_ERR_USAGE;
    return print(lease_json(lease), json);
}
