-- One database per service (DESIGN.md §2), each owned by a role of its own with a password of
-- its own, so a service cannot read another's tables even by mistake, and one leaked database
-- URL opens one database. The postgres image runs this once, when its data volume is empty.
-- The passwords come from AUTH_DB_PASSWORD, LICENSING_DB_PASSWORD, BILLING_DB_PASSWORD and
-- NOTIFY_DB_PASSWORD (see docker-compose.yml); \getenv needs psql 15, as in the postgres:15
-- image.
\set ON_ERROR_STOP on
\getenv auth_password AUTH_DB_PASSWORD
\getenv licensing_password LICENSING_DB_PASSWORD
\getenv billing_password BILLING_DB_PASSWORD
\getenv notify_password NOTIFY_DB_PASSWORD

CREATE ROLE "auth" LOGIN PASSWORD :'auth_password';
CREATE DATABASE "auth" OWNER "auth";
REVOKE ALL ON DATABASE "auth" FROM PUBLIC;

CREATE ROLE "licensing" LOGIN PASSWORD :'licensing_password';
CREATE DATABASE "licensing" OWNER "licensing";
REVOKE ALL ON DATABASE "licensing" FROM PUBLIC;

CREATE ROLE "billing" LOGIN PASSWORD :'billing_password';
CREATE DATABASE "billing" OWNER "billing";
REVOKE ALL ON DATABASE "billing" FROM PUBLIC;

CREATE ROLE "notify" LOGIN PASSWORD :'notify_password';
CREATE DATABASE "notify" OWNER "notify";
REVOKE ALL ON DATABASE "notify" FROM PUBLIC;
