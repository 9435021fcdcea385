// license.hpp: a small C++17 wrapper over license_client.h, for a product to copy.
//
// The handle and every result the library allocates are owned by RAII objects, so nothing
// leaks on an early return or an exception; a failed operation throws license::Error with
// the library's status, the API's error code and its message.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "license_client.h"

namespace license {

class Error : public std::runtime_error {
  public:
    Error(lc_status status, std::string code, const std::string &message)
        : std::runtime_error(message), status_(status), code_(std::move(code)) {}
    lc_status status() const { return status_; }
    // the API's snake_case code: "invalid_credentials", "no_seats_available", ...
    const std::string &code() const { return code_; }

  private:
    lc_status status_;
    std::string code_;
};

// "may the product run?": a copy of lc_validation that owns its strings
struct Verdict {
    bool valid = false;
    std::string code;   // "VALID", or why not: "EXPIRED", "DEACTIVATED", "GRACE_EXPIRED", ...
    std::string reason; // the same in words, for the user
    bool online = false;
    std::string license_id;
    std::optional<std::time_t> expires_at;  // none: perpetual
    std::optional<std::time_t> grace_until; // set when the server could not be reached
    std::vector<std::string> features;

    explicit operator bool() const { return valid; }
};

struct Options {
    std::string product;                // the product code, e.g. "cadpro"
    std::optional<std::string> server;  // none: the one stored at activation
    std::optional<std::string> data_dir; // none: $LICENSE_CLIENT_DATA_DIR or the per-user folder
    // The vendor's JWKS, pinned: only its keys are trusted, none is fetched. Ship one of the two
    // with the product; with neither, the keys fetched into the user-writable data folder are
    // trusted as found there (see "Security" in the README).
    std::optional<std::string> jwks_text; // the JWKS itself, compiled in
    std::optional<std::string> jwks_file; // a JWKS file installed with the product
};

class Client {
  public:
    explicit Client(const Options &options) {
        lc_client *raw = nullptr;
        if (lc_client_new(&raw) != LC_OK)
            throw std::bad_alloc();
        handle_.reset(raw);
        check(lc_client_set_product(raw, options.product.c_str()));
        if (options.server)
            check(lc_client_set_server(raw, options.server->c_str()));
        if (options.data_dir)
            check(lc_client_set_data_dir(raw, options.data_dir->c_str()));
        if (options.jwks_text)
            check(lc_client_set_jwks_text(raw, options.jwks_text->c_str()));
        else if (options.jwks_file)
            check(lc_client_set_jwks_file(raw, options.jwks_file->c_str()));
    }

    // Activates this machine (once, online; again uses no new seat).
    Verdict activate(const std::string &license_id, const std::string &password,
                     const std::optional<std::string> &machine_name = std::nullopt) {
        lc_validation *raw = nullptr;
        check(lc_activate(handle_.get(), license_id.c_str(), password.c_str(),
                          machine_name ? machine_name->c_str() : nullptr, &raw));
        return verdict(raw);
    }

    // Online: the server's verdict, or the certificate alone within the grace period when the
    // server cannot be reached. Offline: the certificate alone. Never throws for a license
    // that is not valid: read the verdict.
    Verdict validate(lc_mode mode = LC_ONLINE) {
        lc_validation *raw = nullptr;
        check(lc_validate(handle_.get(), mode, &raw));
        return verdict(raw);
    }

    bool has_feature(const std::string &code) {
        bool found = false;
        check(lc_has_feature(handle_.get(), code.c_str(), &found));
        return found;
    }

    // Releases this machine's seat on the server.
    void deactivate() { check(lc_deactivate(handle_.get(), nullptr)); }

  private:
    void check(lc_status status) const {
        if (status != LC_OK)
            throw Error(status, lc_client_error_code(handle_.get()),
                        lc_client_error_message(handle_.get()));
    }

    static Verdict verdict(lc_validation *raw) {
        std::unique_ptr<lc_validation, decltype(&lc_validation_free)> owned(raw,
                                                                           lc_validation_free);
        Verdict result;
        result.valid = raw->valid;
        result.code = raw->code;
        result.reason = raw->reason ? raw->reason : "";
        result.online = raw->online;
        result.license_id = raw->license_id ? raw->license_id : "";
        if (raw->expires_at != LC_NO_TIME)
            result.expires_at = static_cast<std::time_t>(raw->expires_at);
        if (raw->grace_until != LC_NO_TIME)
            result.grace_until = static_cast<std::time_t>(raw->grace_until);
        result.features.assign(raw->features, raw->features + raw->feature_count);
        return result;
    }

    std::unique_ptr<lc_client, decltype(&lc_client_free)> handle_{nullptr, lc_client_free};
};

} // namespace license
