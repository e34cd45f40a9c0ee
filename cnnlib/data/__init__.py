"""The images: where they are and which classes a run uses (``locate``, ``download``), the official checksums
(``checksums``), the listing and the split manifest (``dataset``), and the decoded uint8 arrays (``images``)."""
