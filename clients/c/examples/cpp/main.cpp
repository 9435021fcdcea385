// license-example: what a C++ desktop product does with its license, on license.hpp.
//
//     export LICENSE_SERVER_URL=https://licenses.example.com
//     export LICENSE_JWKS=vendor-jwks.json   # the vendor's signing keys, pinned
//     license-example cadpro activate L-7KQX-M2PD PASSWORD   # once, online
//     license-example cadpro run          # at every start: may this machine run the product?
//     license-example cadpro deactivate   # before moving the license to another machine
//
// The server is $LICENSE_SERVER_URL, else the one the activation was made with; the data
// folder $LICENSE_CLIENT_DATA_DIR, else the per-user one. The vendor's JWKS is pinned: the
// text compiled in below, else the file $LICENSE_JWKS (e.g. the portal's /api/v1/signing-keys
// saved at build time). Exit codes: 0 runs (or done), 1 may not run, 2 usage, 4 the license
// server refused or could not be reached.
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <string>

#include "license.hpp"

namespace {

// A product compiles its vendor's JWKS in, e.g. R"({"keys": [{"kty": "OKP", ...}]})". Without a
// pinned JWKS the kit trusts the keys it finds in keys.json in the user-writable data folder:
// whoever can write that folder can sign a certificate of their own.
constexpr const char *kPinnedJwks = "";

std::string date(std::time_t time) {
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M UTC", std::gmtime(&time));
    return text;
}

// At start-up: ask the server, and let the library fall back to the stored certificate within
// the grace period when the network is gone; refuse to run otherwise.
int run(license::Client &client, const std::string &product) {
    license::Verdict verdict = client.validate(LC_ONLINE);
    if (!verdict) {
        std::cerr << "This machine may not run " << product << " (" << verdict.code
                  << "): " << verdict.reason << "\n";
        return 1;
    }
    if (verdict.online)
        std::cout << "License " << verdict.license_id << " confirmed by the license server.\n";
    else if (verdict.grace_until)
        std::cout << "The license server cannot be reached: running on the stored certificate "
                     "until "
                  << date(*verdict.grace_until) << ".\n";
    else
        std::cout << "Running on the stored certificate (activated offline).\n";
    std::cout << "License " << verdict.license_id << ": " << verdict.code << ", "
              << (verdict.expires_at ? "until " + date(*verdict.expires_at) : "perpetual")
              << ".\n";
    for (const std::string &feature : verdict.features)
        std::cout << "  module enabled: " << feature << "\n";
    if (!client.has_feature("steel"))
        std::cout << "  (steel design is not licensed: its menu stays greyed out)\n";
    std::cout << "Running " << product << ".\n";
    return 0;
}

int usage() {
    std::cerr << "usage: license-example PRODUCT activate LICENSE_ID PASSWORD\n"
                 "       license-example PRODUCT run\n"
                 "       license-example PRODUCT deactivate\n";
    return 2;
}

} // namespace

int main(int argc, char **argv) {
    if (argc < 3)
        return usage();
    const std::string product = argv[1], command = argv[2];
    license::Options options;
    options.product = product;
    if (const char *server = std::getenv("LICENSE_SERVER_URL"); server && *server)
        options.server = server;
    if (*kPinnedJwks != '\0')
        options.jwks_text = kPinnedJwks;
    else if (const char *jwks = std::getenv("LICENSE_JWKS"); jwks && *jwks)
        options.jwks_file = jwks;
    else
        std::cerr << "warning: no pinned JWKS (set LICENSE_JWKS): the signing keys are trusted "
                     "as found in the data folder\n";
    try {
        license::Client client(options);
        if (command == "activate" && argc == 5) {
            license::Verdict verdict = client.activate(argv[3], argv[4]);
            std::cout << "Activated license " << verdict.license_id << " on this machine.\n";
            return run(client, product);
        }
        if (command == "run" && argc == 3)
            return run(client, product);
        if (command == "deactivate" && argc == 3) {
            client.deactivate();
            std::cout << "Deactivated: the seat is free for another machine.\n";
            return 0;
        }
        return usage();
    } catch (const license::Error &error) {
        // what a dialog would show; error.code() tells the cases apart
        std::cerr << "License problem (" << error.code() << "): " << error.what() << "\n";
        return 4;
    }
}
