"""portalctl: the staff and internal-systems command line, talking RPC to the services."""

import warnings

# eventlet warns on import that it is in maintenance mode; staff need not read that on
# every command.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
