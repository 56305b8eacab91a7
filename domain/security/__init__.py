"""Security (OCPP 2.0.1 blocks A and M): the pure domain core.

`certificates.py`: what the station decides on about certificates (kind, validity window,
OCPP certificateHashData, whether it chains to a trusted root) and the decisions of
InstallCertificate (M05), DeleteCertificate (M04) and CertificateSigned (A02/A03). The store
itself is behind `ports/certificate_store.py`.
`block.py`: the security block (in the Station's BLOCKS): the CSMS's certificate CALLs, the
station certificate's renewal, the security sink. `events.py`: the critical security events
and the bounded security log (A04).
"""
