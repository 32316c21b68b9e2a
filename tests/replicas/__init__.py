"""Scale-out: several `recargabot serve` processes on one PostgreSQL database."""
