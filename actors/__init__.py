"""The pykka actors of corral and the pure domain cores they own. No sockets here."""
