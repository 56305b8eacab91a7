"""Meter values of a running transaction (J02, J01, TxEnded series): the samplers of the
state machine (a part of EvseTransactions, see fsm.py)."""
from __future__ import annotations

import math
from datetime import datetime, timedelta

from domain import messages as m
from domain.transactions.metering import meter_value, next_aligned, utc_from_epoch
from domain.transactions.settings import TxSettings
from domain.transactions.state import CTX, INF, MAX_ENDED_VALUES, TE, TR


class Samplers:
    """The sampling part of EvseTransactions."""

    def _arm_samplers(self, now: float, utc: datetime) -> None:
        tx = self._tx
        s = self.settings
        sampled = s.sampled_enabled
        tx.updated_due = now + s.tx_updated_interval \
            if sampled and s.tx_updated_interval and s.tx_updated_measurands else INF
        tx.ended_due = now + s.tx_ended_interval \
            if sampled and s.tx_ended_interval and s.tx_ended_measurands else INF
        epoch = utc.timestamp()
        if s.aligned_enabled and s.aligned_interval and s.aligned_measurands and not s.aligned_send_during_idle:
            tx.clock_epoch = next_aligned(epoch, s.aligned_interval)
            tx.clock_due = now + (tx.clock_epoch - epoch)
        else:
            tx.clock_due = INF
        if s.aligned_enabled and s.aligned_tx_ended_interval and s.aligned_tx_ended_measurands:
            tx.ended_clock_epoch = next_aligned(epoch, s.aligned_tx_ended_interval)
            tx.ended_clock_due = now + (tx.ended_clock_epoch - epoch)
        else:
            tx.ended_clock_due = INF
        self._sample_due = min(tx.updated_due, tx.clock_due, tx.ended_due, tx.ended_clock_due)

    def _sample(self, now: float, utc: datetime) -> None:
        tx = self._tx
        s = self.settings
        r = self._reading
        if now >= tx.updated_due:               # J02: TxUpdatedMeasurands every TxUpdatedInterval
            ts = _nominal(utc, now, tx.updated_due, s.tx_updated_interval)
            tx.updated_due = _advance(tx.updated_due, s.tx_updated_interval, now)
            mv = meter_value(r, s.tx_updated_measurands, CTX.Sample_Periodic, ts)
            if mv is not None:
                self._emit(TE.Updated, ts, TR.MeterValuePeriodic, state=self._charging_state(), meter=[mv])
        if now >= tx.clock_due:                 # J01: AlignedDataCtrlr.Measurands at every boundary
            ts = utc_from_epoch(tx.clock_epoch)
            epoch = utc.timestamp()
            tx.clock_epoch = next_aligned(max(epoch, tx.clock_epoch), s.aligned_interval)
            tx.clock_due = now + (tx.clock_epoch - epoch)
            mv = meter_value(r, s.aligned_measurands, CTX.Sample_Clock, ts)
            if mv is not None:
                self._emit(TE.Updated, ts, TR.MeterValueClock, state=self._charging_state(), meter=[mv])
        if now >= tx.ended_due:                 # SampledDataCtrlr.TxEndedInterval series
            ts = _nominal(utc, now, tx.ended_due, s.tx_ended_interval)
            tx.ended_due = _advance(tx.ended_due, s.tx_ended_interval, now)
            if len(tx.ended_values) < MAX_ENDED_VALUES:
                mv = meter_value(r, s.tx_ended_measurands, CTX.Sample_Periodic, ts)
                if mv is not None:
                    tx.ended_values.append(mv)
        if now >= tx.ended_clock_due:           # AlignedDataCtrlr.TxEndedInterval series
            ts = utc_from_epoch(tx.ended_clock_epoch)
            epoch = utc.timestamp()
            tx.ended_clock_epoch = next_aligned(max(epoch, tx.ended_clock_epoch), s.aligned_tx_ended_interval)
            tx.ended_clock_due = now + (tx.ended_clock_epoch - epoch)
            if len(tx.ended_values) < MAX_ENDED_VALUES:
                mv = meter_value(r, s.aligned_tx_ended_measurands, CTX.Sample_Clock, ts)
                if mv is not None:
                    tx.ended_values.append(mv)
        self._sample_due = min(tx.updated_due, tx.clock_due, tx.ended_due, tx.ended_clock_due)



def _sampling(s: TxSettings) -> tuple:
    """The settings the meter-value samplers of a transaction are armed from."""
    return (s.sampled_enabled, s.tx_updated_interval, bool(s.tx_updated_measurands), s.tx_ended_interval,
            bool(s.tx_ended_measurands), s.aligned_enabled, s.aligned_interval, bool(s.aligned_measurands),
            s.aligned_send_during_idle, s.aligned_tx_ended_interval, bool(s.aligned_tx_ended_measurands))


def _timestamp(mv: m.MeterValue) -> datetime:
    return mv.timestamp


def _nominal(utc: datetime, now: float, due: float, interval: int) -> datetime:
    """The UTC time of the sampling instant `due` (when the tick came late by less than one
    interval), so consecutive samples are exactly one interval apart."""
    lag = now - due
    return utc - timedelta(seconds=lag) if 0 < lag < interval else utc


def _advance(due: float, interval: int, now: float) -> float:
    due += interval
    if due <= now:                              # missed samples are skipped, not bunched
        due += interval * (math.floor((now - due) / interval) + 1)
        if due <= now:                          # (now - due) a float hair below a multiple
            due += interval
    return due
