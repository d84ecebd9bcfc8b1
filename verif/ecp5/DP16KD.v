// Behavioural model of the Lattice ECP5 DP16KD block RAM, for simulating pyhdl.primitives.BlockRAM's
// ECP5 mapping in Verilator (verif/tests/test_primitives.py). Yosys ships DP16KD only as a
// blackbox (techlibs/ecp5/cells_sim.v), so this model is written from Lattice TN1264 (ECP5 Memory
// Usage Guide) and the conventions of Lattice's own simulation library, independently of the
// Amaranth mapping it checks:
//
// * The array is 1024 x 18 bits. A port of DATA_WIDTH w addresses it through its top pins,
//   AD13 .. AD(14 - abits), abits = 14, 13, 12, 11, 10 for w = 1, 2, 4, 9, 18; data on DI0/DO0 up.
//   Word addr, bit i sits at array bit addr * w + addr / (8 / w) + i for w = 1, 2, 4 (each 9-bit
//   byte's parity bit is skipped) and addr * w + i for w = 9, 18. At w = 18, AD0 / AD1 enable the
//   write of bits 0-8 / 9-17.
// * INITVAL_xx holds 18-bit words 16 * xx .. 16 * xx + 15, word j in bits 20 * j .. 20 * j + 17.
// * A port with CE high at a clock edge (and CS2..0 equal to its CSDECODE) writes DI when WE is
//   high, else reads the array into its output latch; with REGMODE "OUTREG" the output register
//   loads the latch when OCE is high and drives DO, with "NOREG" DO is the latch.
// * A read of array bits that the other port writes at the same edge is undefined in the part
//   (Lattice's model gives X): here those bits read inverted, so a design that relies on them fails.
//
// Modelled subset, checked at elaboration or at each edge ($fatal otherwise): port A writes (DOA0..17
// are left out: connecting them fails), port B reads (WEB low), REGMODE_B "OUTREG", CSDECODE "0b000", RSTA
// and RSTB low, one clock (CLKA and CLKB the same net; the collision check compares the two ports'
// pins at the edge).
`default_nettype none
module DP16KD (
    input wire DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0,
    input wire ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0,
    input wire CEA, OCEA, CLKA, WEA, RSTA,
    input wire CSA2, CSA1, CSA0,
    input wire DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
    input wire ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0,
    input wire CEB, OCEB, CLKB, WEB, RSTB,
    input wire CSB2, CSB1, CSB0,
    output wire DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0
);
    parameter integer DATA_WIDTH_A = 18;
    parameter integer DATA_WIDTH_B = 18;
    parameter REGMODE_A = "NOREG";
    parameter REGMODE_B = "NOREG";
    parameter RESETMODE = "SYNC";
    parameter ASYNC_RESET_RELEASE = "SYNC";
    parameter CSDECODE_A = "0b000";
    parameter CSDECODE_B = "0b000";
    parameter WRITEMODE_A = "NORMAL";
    parameter WRITEMODE_B = "NORMAL";
    parameter GSR = "ENABLED";
    parameter [319:0] INITVAL_00 = 320'h0;
    parameter [319:0] INITVAL_01 = 320'h0;
    parameter [319:0] INITVAL_02 = 320'h0;
    parameter [319:0] INITVAL_03 = 320'h0;
    parameter [319:0] INITVAL_04 = 320'h0;
    parameter [319:0] INITVAL_05 = 320'h0;
    parameter [319:0] INITVAL_06 = 320'h0;
    parameter [319:0] INITVAL_07 = 320'h0;
    parameter [319:0] INITVAL_08 = 320'h0;
    parameter [319:0] INITVAL_09 = 320'h0;
    parameter [319:0] INITVAL_0A = 320'h0;
    parameter [319:0] INITVAL_0B = 320'h0;
    parameter [319:0] INITVAL_0C = 320'h0;
    parameter [319:0] INITVAL_0D = 320'h0;
    parameter [319:0] INITVAL_0E = 320'h0;
    parameter [319:0] INITVAL_0F = 320'h0;
    parameter [319:0] INITVAL_10 = 320'h0;
    parameter [319:0] INITVAL_11 = 320'h0;
    parameter [319:0] INITVAL_12 = 320'h0;
    parameter [319:0] INITVAL_13 = 320'h0;
    parameter [319:0] INITVAL_14 = 320'h0;
    parameter [319:0] INITVAL_15 = 320'h0;
    parameter [319:0] INITVAL_16 = 320'h0;
    parameter [319:0] INITVAL_17 = 320'h0;
    parameter [319:0] INITVAL_18 = 320'h0;
    parameter [319:0] INITVAL_19 = 320'h0;
    parameter [319:0] INITVAL_1A = 320'h0;
    parameter [319:0] INITVAL_1B = 320'h0;
    parameter [319:0] INITVAL_1C = 320'h0;
    parameter [319:0] INITVAL_1D = 320'h0;
    parameter [319:0] INITVAL_1E = 320'h0;
    parameter [319:0] INITVAL_1F = 320'h0;
    parameter [319:0] INITVAL_20 = 320'h0;
    parameter [319:0] INITVAL_21 = 320'h0;
    parameter [319:0] INITVAL_22 = 320'h0;
    parameter [319:0] INITVAL_23 = 320'h0;
    parameter [319:0] INITVAL_24 = 320'h0;
    parameter [319:0] INITVAL_25 = 320'h0;
    parameter [319:0] INITVAL_26 = 320'h0;
    parameter [319:0] INITVAL_27 = 320'h0;
    parameter [319:0] INITVAL_28 = 320'h0;
    parameter [319:0] INITVAL_29 = 320'h0;
    parameter [319:0] INITVAL_2A = 320'h0;
    parameter [319:0] INITVAL_2B = 320'h0;
    parameter [319:0] INITVAL_2C = 320'h0;
    parameter [319:0] INITVAL_2D = 320'h0;
    parameter [319:0] INITVAL_2E = 320'h0;
    parameter [319:0] INITVAL_2F = 320'h0;
    parameter [319:0] INITVAL_30 = 320'h0;
    parameter [319:0] INITVAL_31 = 320'h0;
    parameter [319:0] INITVAL_32 = 320'h0;
    parameter [319:0] INITVAL_33 = 320'h0;
    parameter [319:0] INITVAL_34 = 320'h0;
    parameter [319:0] INITVAL_35 = 320'h0;
    parameter [319:0] INITVAL_36 = 320'h0;
    parameter [319:0] INITVAL_37 = 320'h0;
    parameter [319:0] INITVAL_38 = 320'h0;
    parameter [319:0] INITVAL_39 = 320'h0;
    parameter [319:0] INITVAL_3A = 320'h0;
    parameter [319:0] INITVAL_3B = 320'h0;
    parameter [319:0] INITVAL_3C = 320'h0;
    parameter [319:0] INITVAL_3D = 320'h0;
    parameter [319:0] INITVAL_3E = 320'h0;
    parameter [319:0] INITVAL_3F = 320'h0;

    wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
    wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
    wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
    wire [17:0] dib_unused = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};

    function automatic integer abits(input integer w);
        abits = (w == 1) ? 14 : (w == 2) ? 13 : (w == 4) ? 12 : (w == 9) ? 11 : 10;
    endfunction

    // Array bit of data bit i at word addr of a w-bit port (Lattice: addr * w + addr / div + i).
    function automatic integer array_bit(input integer addr, input integer i, input integer w);
        array_bit = (w >= 9) ? addr * w + i : addr * w + addr / (8 / w) + i;
    endfunction

    function automatic [319:0] initval(input integer k);
        case (k)
            0: initval = INITVAL_00;
            1: initval = INITVAL_01;
            2: initval = INITVAL_02;
            3: initval = INITVAL_03;
            4: initval = INITVAL_04;
            5: initval = INITVAL_05;
            6: initval = INITVAL_06;
            7: initval = INITVAL_07;
            8: initval = INITVAL_08;
            9: initval = INITVAL_09;
            10: initval = INITVAL_0A;
            11: initval = INITVAL_0B;
            12: initval = INITVAL_0C;
            13: initval = INITVAL_0D;
            14: initval = INITVAL_0E;
            15: initval = INITVAL_0F;
            16: initval = INITVAL_10;
            17: initval = INITVAL_11;
            18: initval = INITVAL_12;
            19: initval = INITVAL_13;
            20: initval = INITVAL_14;
            21: initval = INITVAL_15;
            22: initval = INITVAL_16;
            23: initval = INITVAL_17;
            24: initval = INITVAL_18;
            25: initval = INITVAL_19;
            26: initval = INITVAL_1A;
            27: initval = INITVAL_1B;
            28: initval = INITVAL_1C;
            29: initval = INITVAL_1D;
            30: initval = INITVAL_1E;
            31: initval = INITVAL_1F;
            32: initval = INITVAL_20;
            33: initval = INITVAL_21;
            34: initval = INITVAL_22;
            35: initval = INITVAL_23;
            36: initval = INITVAL_24;
            37: initval = INITVAL_25;
            38: initval = INITVAL_26;
            39: initval = INITVAL_27;
            40: initval = INITVAL_28;
            41: initval = INITVAL_29;
            42: initval = INITVAL_2A;
            43: initval = INITVAL_2B;
            44: initval = INITVAL_2C;
            45: initval = INITVAL_2D;
            46: initval = INITVAL_2E;
            47: initval = INITVAL_2F;
            48: initval = INITVAL_30;
            49: initval = INITVAL_31;
            50: initval = INITVAL_32;
            51: initval = INITVAL_33;
            52: initval = INITVAL_34;
            53: initval = INITVAL_35;
            54: initval = INITVAL_36;
            55: initval = INITVAL_37;
            56: initval = INITVAL_38;
            57: initval = INITVAL_39;
            58: initval = INITVAL_3A;
            59: initval = INITVAL_3B;
            60: initval = INITVAL_3C;
            61: initval = INITVAL_3D;
            62: initval = INITVAL_3E;
            63: initval = INITVAL_3F;
            default: initval = 320'h0;
        endcase
    endfunction

    reg [18431:0] mem;
    reg [17:0] latch_b = 18'h0;
    reg [17:0] out_b = 18'h0;
    reg [319:0] iv;
    integer q;

    initial begin
        if (!(DATA_WIDTH_A == 1 || DATA_WIDTH_A == 2 || DATA_WIDTH_A == 4 || DATA_WIDTH_A == 9 || DATA_WIDTH_A == 18)
            || !(DATA_WIDTH_B == 1 || DATA_WIDTH_B == 2 || DATA_WIDTH_B == 4 || DATA_WIDTH_B == 9 || DATA_WIDTH_B == 18))
            $fatal(1, "DP16KD %m: DATA_WIDTH must be 1, 2, 4, 9 or 18");
        if (REGMODE_B != "OUTREG" || CSDECODE_A != "0b000" || CSDECODE_B != "0b000" || RESETMODE != "SYNC")
            $fatal(1, "DP16KD %m: configuration outside the modelled subset");
        for (q = 0; q < 1024; q = q + 1) begin
            iv = initval(q / 16);
            mem[q * 18 +: 18] = iv[(q % 16) * 20 +: 18];
        end
    end

    wire a_on = CEA && {CSA2, CSA1, CSA0} == 3'b000;
    wire b_on = CEB && {CSB2, CSB1, CSB0} == 3'b000;
    wire [31:0] a_addr = {18'b0, ada} >> (14 - abits(DATA_WIDTH_A));
    wire [31:0] b_addr = {18'b0, adb} >> (14 - abits(DATA_WIDTH_B));
    integer i, pos, lo;

    // Port A: write.
    always @(posedge CLKA) begin
        if (RSTA) $fatal(1, "DP16KD %m: RSTA is not modelled");
        if (a_on && WEA)
            for (i = 0; i < DATA_WIDTH_A; i = i + 1)
                if (DATA_WIDTH_A != 18 || (i < 9 ? ada[0] : ada[1]))
                    mem[array_bit(a_addr, i, DATA_WIDTH_A)] <= dia[i];
    end

    // Port B: read into the latch (garbage where port A writes the same bits), output register.
    always @(posedge CLKB) begin
        if (RSTB || WEB) $fatal(1, "DP16KD %m: RSTB and writes through port B are not modelled");
        if (b_on) begin
            lo = array_bit(a_addr, 0, DATA_WIDTH_A);
            for (i = 0; i < 18; i = i + 1) begin
                if (i < DATA_WIDTH_B) begin
                    pos = array_bit(b_addr, i, DATA_WIDTH_B);
                    if (a_on && WEA && pos >= lo && pos < lo + DATA_WIDTH_A
                            && (DATA_WIDTH_A != 18 || (pos - lo < 9 ? ada[0] : ada[1])))
                        latch_b[i] <= ~mem[pos];
                    else
                        latch_b[i] <= mem[pos];
                end else
                    latch_b[i] <= 1'b0;
            end
        end
        if (OCEB) out_b <= latch_b;
    end

    assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = out_b;
endmodule
`default_nettype wire
