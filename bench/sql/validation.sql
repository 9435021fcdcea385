-- bench.capacity: what a validation reads (the license and the installation, by key)
\set lic random(1, :licenses)
\set seed :lic + :licenses - 1
SELECT l.id, l.seats, l.expires_at, l.suspended_at, i.status, i.deactivated_at
    FROM licenses l JOIN installations i ON i.license_pk = l.id
    WHERE l.id = :lic AND i.installation_id = 'seed-' || :seed;
