-- bench.capacity: one new activation as licensing runs it (row lock, seat count, look-up,
-- inserts, outbox), then the outbox relay marking its event published
\set lic random(1, :licenses)
\set n random(1, 1000000000)
BEGIN;
SELECT id, seats, expires_at, suspended_at, activation_password FROM licenses
    WHERE id = :lic FOR UPDATE;
SELECT count(*) FROM installations WHERE license_pk = :lic AND status = 'active';
SELECT id FROM installations WHERE license_pk = :lic AND installation_id = 'i-' || :client_id || '-' || :n
    AND status = 'active';
INSERT INTO installations (license_pk, installation_id, machine_name, status, activated_at,
                           last_seen_at)
    VALUES (:lic, 'i-' || :client_id || '-' || :n, 'Bench machine', 'active', now(), now());
INSERT INTO history (license_pk, type, at, installation_id, machine_name, source, actor_type)
    VALUES (:lic, 'activated', now(), 'i-' || :client_id || '-' || :n, 'Bench machine', 'online', 'product');
INSERT INTO audit (at, action, subject, facts)
    VALUES (now(), 'installation.activated', 'L-' || :lic, '{"installation_id": "i", "source": "online"}');
INSERT INTO outbox (event_type, payload, created_at)
    VALUES ('installation_activated', jsonb_build_object('license_id', 'L-' || :lic,
            'installation_id', 'i-' || :client_id || '-' || :n, 'machine_name', 'Bench machine',
            'customer_id', 'C-1', 'product', 'bench', 'seats', 1000000, 'in_use', 21,
            'request_id', md5(:n::text), 'at', now()), now());
END;
UPDATE outbox SET published_at = now() WHERE id = currval('outbox_id_seq');
