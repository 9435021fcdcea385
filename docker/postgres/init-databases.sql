-- One database per service (DESIGN.md §2), each owned by a role of its own, so a service
-- cannot read another's tables even by mistake. The postgres image runs this once, when
-- its data volume is empty. The roles' password comes from PORTAL_DB_PASSWORD (see
-- docker-compose.yml); \getenv needs psql 15, as in the postgres:15 image.
\set ON_ERROR_STOP on
\getenv password PORTAL_DB_PASSWORD

CREATE ROLE "auth" LOGIN PASSWORD :'password';
CREATE DATABASE "auth" OWNER "auth";
REVOKE ALL ON DATABASE "auth" FROM PUBLIC;

CREATE ROLE "licensing" LOGIN PASSWORD :'password';
CREATE DATABASE "licensing" OWNER "licensing";
REVOKE ALL ON DATABASE "licensing" FROM PUBLIC;

CREATE ROLE "billing" LOGIN PASSWORD :'password';
CREATE DATABASE "billing" OWNER "billing";
REVOKE ALL ON DATABASE "billing" FROM PUBLIC;

CREATE ROLE "notify" LOGIN PASSWORD :'password';
CREATE DATABASE "notify" OWNER "notify";
REVOKE ALL ON DATABASE "notify" FROM PUBLIC;
