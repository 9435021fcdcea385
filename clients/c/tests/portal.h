/* A fake License Portal for the online tests: the API's routes, answers signed with a test
 * key, and switches for what it should answer. */
#ifndef PORTAL_H
#define PORTAL_H

#include "support.h"

typedef struct portal {
    signer *signer;
    int64_t now;
    int64_t expires; /* the license's expiry, as the last certificate said */
    bool perpetual;  /* validations answer expires_at null: the license became perpetual */
    const char *product;      /* the license's product */
    const char *verdict;      /* what validations answer; NULL: 503 */
    const char *lease_ending; /* heartbeats answer 410 lease_expired with this reason */
    int activations;
    int deactivations;
    int validations;
    int checkouts;
    int heartbeats;
    int checkins;
    char sent_product[64];
    char sent_machine[128];
    char installation[160];
    char lease_token[64];
} portal;

response portal_handle(const request *incoming, void *user);
/* A client of the portal at `url` with the data folder `folder` and the portal's clock. */
lc_client *portal_client(portal *portal, const char *url, const char *folder);

#endif
