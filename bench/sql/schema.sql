-- bench.capacity: tables shaped like licensing's (services/licensing/models.py), enough for
-- an activation-shaped transaction; :licenses licenses with many seats.
CREATE TABLE licenses (
    id serial PRIMARY KEY,
    license_id varchar(32) UNIQUE NOT NULL,
    customer_id varchar(32) NOT NULL,
    seats integer NOT NULL,
    expires_at timestamptz,
    suspended_at timestamptz,
    activation_password varchar(255) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE installations (
    id serial PRIMARY KEY,
    license_pk integer NOT NULL REFERENCES licenses (id),
    installation_id varchar(128) NOT NULL,
    machine_name varchar(200) NOT NULL,
    status varchar(16) NOT NULL,
    activated_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    deactivated_at timestamptz
);
CREATE INDEX installations_license_status ON installations (license_pk, status);
CREATE UNIQUE INDEX installations_active ON installations (license_pk, installation_id)
    WHERE status = 'active';
CREATE TABLE history (
    id serial PRIMARY KEY,
    license_pk integer NOT NULL REFERENCES licenses (id),
    type varchar(32) NOT NULL,
    at timestamptz NOT NULL,
    installation_id varchar(128) NOT NULL,
    machine_name varchar(200),
    source varchar(16) NOT NULL,
    actor_type varchar(16)
);
CREATE INDEX history_license ON history (license_pk, at);
CREATE TABLE audit (
    id serial PRIMARY KEY,
    at timestamptz NOT NULL,
    action varchar(64) NOT NULL,
    subject varchar(64) NOT NULL,
    facts jsonb NOT NULL
);
CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    event_type varchar(64) NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
INSERT INTO licenses (license_id, customer_id, seats, activation_password)
SELECT 'L-' || n, 'C-' || (n % 100), 1000000, 'gAAAAAB' || md5(n::text)
FROM generate_series(1, :licenses) AS n;
INSERT INTO installations (license_pk, installation_id, machine_name, status, activated_at,
                           last_seen_at)
SELECT n % :licenses + 1, 'seed-' || n, 'Seed machine', 'active', now(), now()
FROM generate_series(1, 20 * :licenses) AS n;
ANALYZE;
